"""Which guest_memfd conversion ABI the running kernel has, told by the
switch its kvm module offers in /sys/module/kvm/parameters:

- the Linux 6.12 series (upstream's RFC v5): kvm.vm_memory_attributes=0
  turns in-place conversion on; content modes ZERO and PRESERVE, the
  kvm_gmem_content event, -EHWPOISON for a poisoned page;
- Linux 7.3 (upstream's v8): kvm.gmem_in_place_conversion=1; flags must
  be 0, no kvm_gmem_content, a poisoned page converts like any other.

Tests ask here instead of reading a parameter themselves; a check that
needs what only the 6.12 series has calls require_6_12().
"""
import tap

PARAMS = "/sys/module/kvm/parameters"

# base: (switch parameter, its value when conversion is in place, how to boot)
SWITCHES = {
    "6.12": ("vm_memory_attributes", "N", "kvm.vm_memory_attributes=0"),
    "7.3": ("gmem_in_place_conversion", "Y", "kvm.gmem_in_place_conversion=1"),
}


def _param(name):
    try:
        with open(f"{PARAMS}/{name}") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def base():
    """"6.12" or "7.3", whichever switch this KVM has; None for neither."""
    for name, (param, _, _) in SWITCHES.items():
        if _param(param) is not None:
            return name
    return None


def in_place():
    """Whether guest_memfd, not the VM, holds the attributes here."""
    b = base()
    return b is not None and _param(SWITCHES[b][0]) == SWITCHES[b][1]


def content_modes():
    """Whether KVM_SET_MEMORY_ATTRIBUTES2 takes ZERO and PRESERVE."""
    return base() == "6.12"


def require_6_12(what):
    """Skips the calling check, naming @what, on a kernel that lacks it."""
    if base() != "6.12":
        raise tap.Skip(f"{what}: only the Linux 6.12 series has it")


def boot_hint():
    """The kernel parameters that turn in-place conversion on, for a
    message: this kernel's, or both when it has neither switch."""
    b = base()
    if b:
        return SWITCHES[b][2]
    return " or ".join(s[2] for s in SWITCHES.values())
