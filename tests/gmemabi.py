"""Which guest_memfd conversion ABI the running kernel has, told by the
switch its kvm module offers in /sys/module/kvm/parameters:

- the Linux 6.12 series (upstream's RFC v5): kvm.vm_memory_attributes=0
  turns in-place conversion on; content modes ZERO and PRESERVE, the
  kvm_gmem_content event, -EHWPOISON for a poisoned page;
- Linux 7.3 (upstream's v8): kvm.gmem_in_place_conversion=1; flags must
  be 0, no kvm_gmem_content, a poisoned page converts like any other.

Tests ask here instead of reading a parameter themselves.
"""
import os

PARAMS = "/sys/module/kvm/parameters"

# Each base's switch: the kvm module parameter only that base has.
SWITCHES = {"6.12": "vm_memory_attributes", "7.3": "gmem_in_place_conversion"}


def base():
    """"6.12" or "7.3", whichever switch this KVM has; None for neither."""
    for name, param in SWITCHES.items():
        if os.path.exists(os.path.join(PARAMS, param)):
            return name
    return None


def content_modes():
    """Whether KVM_SET_MEMORY_ATTRIBUTES2 takes ZERO and PRESERVE."""
    return base() == "6.12"
