// SPDX-License-Identifier: GPL-2.0
/*
 * The guest side: code that asks for conversions with KVM_HC_MAP_GPA_RANGE,
 * and the vCPU thread that runs it and hands requests over.
 */
#include <signal.h>

#include "gmemload.h"

/* ---- the guest and its vCPU thread ---- */

static struct guest_request guest_req;

/*
 * Report the last hypercall's result, let the host fill in the next
 * request, and ask for it.  The guest never touches the data memory.
 */
void guest_code(void)
{
	uint64_t ret = 0;

	for (;;) {
		GUEST_SYNC1(ret);
		ret = kvm_hypercall(KVM_HC_MAP_GPA_RANGE,
				    READ_ONCE(guest_req.gpa),
				    READ_ONCE(guest_req.npages),
				    READ_ONCE(guest_req.flags), 0);
	}
}

/*
 * A VMM's side of KVM_HC_MAP_GPA_RANGE: convert the range in place.  Going
 * private it passes flags = 0, as VMMs written against upstream's later
 * postings (which have no content modes) do, and KVM changes no byte;
 * going shared it asks for zeros, so that nothing private leaks to the
 * host, where the kernel has content modes (see set_attributes_in_mode()).
 */
static void handle_map_gpa_range(struct vm_ctx *v, struct kvm_run *run)
{
	uint64_t gpa = run->hypercall.args[0];
	uint64_t npages = run->hypercall.args[1];
	bool to_private = run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED;

	if (run->hypercall.nr != KVM_HC_MAP_GPA_RANGE || gpa < DATA_GPA ||
	    gpa % PAGE_BYTES || !npages ||
	    (gpa - DATA_GPA) / PAGE_BYTES + npages > v->npages) {
		run->hypercall.ret = -KVM_EINVAL;
		return;
	}
	convert_range(v, (gpa - DATA_GPA) / PAGE_BYTES, npages, to_private,
		      to_private ? KVM_SET_MEMORY_ATTRIBUTES2_MODE_UNSPECIFIED :
				   KVM_SET_MEMORY_ATTRIBUTES2_ZERO, true);
	run->hypercall.ret = 0;
}

/* vCPU thread: wait for the next request; false when told to quit. */
static bool vcpu_take_request(struct vm_ctx *v)
{
	struct mailbox *mb = &v->mb;
	bool quit;

	pthread_mutex_lock(&mb->lock);
	while (mb->state != MB_REQUEST && mb->state != MB_QUIT)
		pthread_cond_wait(&mb->cond, &mb->lock);
	quit = mb->state == MB_QUIT;
	if (!quit) {
		/* The vCPU is stopped: its memory is ours to write. */
		WRITE_ONCE(v->guest_req->gpa, mb->gpa);
		WRITE_ONCE(v->guest_req->npages, mb->npages);
		WRITE_ONCE(v->guest_req->flags, mb->flags);
		mb->state = MB_RUNNING;
	}
	pthread_mutex_unlock(&mb->lock);
	return !quit;
}

static void vcpu_finish_request(struct vm_ctx *v, int64_t result)
{
	struct mailbox *mb = &v->mb;

	pthread_mutex_lock(&mb->lock);
	mb->result = result;
	mb->state = MB_DONE;
	pthread_cond_broadcast(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vm_ctx *v = arg;
	struct kvm_run *run = v->vcpu->run;
	bool busy = false;
	struct ucall uc;

	for (;;) {
		vcpu_run(v->vcpu);
		if (run->exit_reason == KVM_EXIT_HYPERCALL) {
			handle_map_gpa_range(v, run);
			continue;
		}
		if (run->exit_reason != KVM_EXIT_IO)
			die("vm%d: unexpected exit %s", v->idx,
			    exit_reason_str(run->exit_reason));
		switch (get_ucall(v->vcpu, &uc)) {
		case UCALL_SYNC:
			break;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			die("vm%d: unexpected ucall %lu", v->idx, uc.cmd);
		}
		if (busy)
			vcpu_finish_request(v, uc.args[0]);
		busy = vcpu_take_request(v);
		if (!busy)
			return NULL;
	}
}

/* Main thread: have @v's guest ask for the conversion, and wait for it. */
void guest_convert(struct vm_ctx *v, uint64_t first, uint64_t npages,
			  bool to_private)
{
	struct mailbox *mb = &v->mb;
	int64_t result;

	pthread_mutex_lock(&mb->lock);
	mb->gpa = DATA_GPA + first * PAGE_BYTES;
	mb->npages = npages;
	mb->flags = (npages == PAGES_2M ? KVM_MAP_GPA_RANGE_PAGE_SZ_2M :
					  KVM_MAP_GPA_RANGE_PAGE_SZ_4K) |
		    (to_private ? KVM_MAP_GPA_RANGE_ENCRYPTED :
				  KVM_MAP_GPA_RANGE_DECRYPTED);
	mb->state = MB_REQUEST;
	pthread_cond_broadcast(&mb->cond);
	while (mb->state != MB_DONE)
		pthread_cond_wait(&mb->cond, &mb->lock);
	mb->state = MB_IDLE;
	result = mb->result;
	pthread_mutex_unlock(&mb->lock);
	if (result)
		die("vm%d: MAP_GPA_RANGE [%#lx, +%lu pages) returned %ld",
		    v->idx, DATA_GPA + first * PAGE_BYTES, npages, result);
}

void start_vcpu_thread(struct vm_ctx *v)
{
	sigset_t stop_signals, old;

	pthread_mutex_init(&v->mb.lock, NULL);
	pthread_cond_init(&v->mb.cond, NULL);
	v->guest_req = addr_gva2hva(v->vm, (vm_vaddr_t)&guest_req);

	/* SIGINT and SIGTERM are for the main thread, which stops cleanly. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
	if (pthread_create(&v->thread, NULL, vcpu_thread, v))
		die("pthread_create failed");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	v->has_thread = true;
}

void stop_vcpu_thread(struct vm_ctx *v)
{
	if (!v->has_thread)
		return;
	pthread_mutex_lock(&v->mb.lock);
	v->mb.state = MB_QUIT;
	pthread_cond_broadcast(&v->mb.cond);
	pthread_mutex_unlock(&v->mb.lock);
	pthread_join(v->thread, NULL);
	v->has_thread = false;
}
