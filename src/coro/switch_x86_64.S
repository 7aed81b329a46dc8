/* SPDX-License-Identifier: MIT */
/*
 * The x86-64 stack switch (System V ABI), used by src/coro/context.c.
 *
 * Only what the ABI says a callee must preserve is saved: rbx, rbp,
 * r12-r15, the MXCSR control bits and the x87 control word. Everything
 * else is caller-saved, so the C caller of eddy__coro_switch() has already
 * spilled what it needs. A new context's stack is laid out by
 * eddy__ctx_make() as if it had been switched away from at the first
 * instruction of eddy__coro_start.
 */
#if defined(__x86_64__) && defined(__ELF__) && !defined(EDDY_CORO_UCONTEXT)

	.text

/* void eddy__coro_switch(void **from_sp (rdi), void *to_sp (rsi)) */
	.globl	eddy__coro_switch
	.hidden	eddy__coro_switch
	.type	eddy__coro_switch, @function
	.p2align 4
eddy__coro_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	eddy__coro_switch, .-eddy__coro_switch

/* The first "return" of a new context lands here with the entry function
 * in r12 and its argument in rbx, and rsp 16-byte aligned. The entry never
 * returns; rip is marked undefined so debuggers and unwinders stop here
 * instead of walking into whatever lies above the stack. */
	.globl	eddy__coro_start
	.hidden	eddy__coro_start
	.type	eddy__coro_start, @function
	.p2align 4
eddy__coro_start:
	.cfi_startproc
	.cfi_undefined rip
	movq	%rbx, %rdi
	callq	*%r12
	ud2
	.cfi_endproc
	.size	eddy__coro_start, .-eddy__coro_start

#endif

	.section .note.GNU-stack,"",@progbits
