/*
 * boot.S: PVH entry, long-mode switch, the AP trampoline, the trap stubs.
 *
 * Boot protocol (kernel/README.md): the kernel is a 64-bit ELF with a Xen
 * PVH note (XEN_ELFNOTE_PHYS32_ENTRY), which `qemu-system-x86_64 -kernel`
 * loads at the segments' physical addresses. The loader enters pvh_entry in
 * 32-bit protected mode, paging off, with %ebx = physical address of the
 * struct hvm_start_info (memory map, command line, RSDP).
 *
 * pvh_entry runs at its physical address (section .boot, linked at VMA =
 * LMA = 2 MiB). It loads static boot page tables that map
 *   0 - 4 GiB at 0 (identity: this code and the AP trampoline),
 *   0 - 4 GiB at DIRECT_BASE (the early direct map),
 *   0 - 1 GiB at KERNEL_VMA (the image, linked there: -mcmodel=kernel),
 * enables long mode and jumps to the high half. mem.c later replaces these
 * tables with ones built from buddy frames; the APs use the boot tables only
 * inside the trampoline.
 */

#define KERNEL_VMA 0xffffffff80000000
#define TRAMP_PHYS 0x8000

/*
 * In long mode, the kernel data selector in ds, es, ss and the null one
 * in fs, gs (their bases come from MSRs): the BSP's path and an AP's
 * trampoline both need it.
 */
	.macro LOAD_DATA_SEGMENTS
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	.endm

/* ---- the PVH note ---- */
	.section .note.pvh, "a"
	.p2align 2
	.long 4			/* namesz: "Xen" and its NUL */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry

/* ---- 32-bit entry, at its physical address ---- */
	.section .boot.text, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl %ebx, boot_start_info
	lgdt boot_gdtr
	ljmp $0x18, $1f
1:	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl $boot_stack32_top, %esp

	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80010001, %eax		/* PG, WP, PE */
	movl %eax, %cr0
	ljmp $0x08, $boot_long

	.code64
boot_long:
	LOAD_DATA_SEGMENTS
	/* Zero the .bss (the loader zero-fills too; do not rely on it). */
	movabsq $__bss_start, %rdi
	movabsq $__bss_end, %rcx
	subq %rdi, %rcx
	xorl %eax, %eax
	rep stosb
	/* cpu_stacks[0].kstack (smp.c): its top, above the guard page. */
	movabsq $cpu_stacks + 4096 + 16384, %rsp
	xorl %ebp, %ebp
	movl boot_start_info, %edi
	movabsq $kmain_bsp, %rax
	call *%rax
2:	hlt
	jmp 2b

	.section .boot.data, "aw"
	.p2align 3
	.globl boot_start_info
boot_start_info:
	.long 0
	.p2align 3
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00cf9a000000ffff	/* 0x18: 32-bit code */
boot_gdtr:
	.word boot_gdtr - boot_gdt - 1
	.long boot_gdt
	.p2align 4
	.space 512
boot_stack32_top:

/*
 * The boot page tables. 2 MiB pages, present + writable (0x83). boot_pd
 * maps 0-4 GiB; its first page maps 0-1 GiB, which boot_pdpt_hi puts at
 * KERNEL_VMA.
 */
	.p2align 12
	.globl boot_pml4
boot_pml4:
	.quad boot_pdpt_lo + 3
	.fill 255, 8, 0
	.quad boot_pdpt_lo + 3		/* 256: DIRECT_BASE */
	.fill 254, 8, 0
	.quad boot_pdpt_hi + 3		/* 511: KERNEL_VMA */
boot_pdpt_lo:
	.quad boot_pd + 0x0000 + 3
	.quad boot_pd + 0x1000 + 3
	.quad boot_pd + 0x2000 + 3
	.quad boot_pd + 0x3000 + 3
	.fill 508, 8, 0
boot_pdpt_hi:
	.fill 510, 8, 0
	.quad boot_pd + 3		/* 510: KERNEL_VMA */
	.quad 0
boot_pd:
	.set i, 0
	.rept 2048
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr

/*
 * The AP trampoline: copied to TRAMP_PHYS (below 1 MiB, never in the
 * buddy), entered by the SIPI in real mode at CS = TRAMP_PHYS >> 4, IP = 0.
 * smp.c fills tramp_cr3 (the boot tables: they identity-map this page),
 * tramp_stack and tramp_entry before each SIPI. Addresses inside are
 * TRAMP_PHYS + offset.
 */
#define T(sym) (TRAMP_PHYS + (sym) - tramp_start)
	.section .rodata
	.p2align 12
	.globl tramp_start, tramp_end, tramp_cr3, tramp_stack, tramp_entry
	.code16
tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdtr - tramp_start
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x18, $T(tramp32)
	.code32
tramp32:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr4, %eax
	orl $0x20, %eax
	movl %eax, %cr4
	movl T(tramp_cr3), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80010001, %eax
	movl %eax, %cr0
	ljmp $0x08, $T(tramp64)
	.code64
tramp64:
	LOAD_DATA_SEGMENTS
	movq T(tramp_stack), %rsp
	movq T(tramp_entry), %rax
	xorl %ebp, %ebp
	jmp *%rax
	.p2align 3
tramp_gdt:
	.quad 0
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
	.quad 0x00cf9a000000ffff
tramp_gdtr:
	.word 31
	.long T(tramp_gdt)
	.p2align 3
tramp_cr3:
	.quad 0
tramp_stack:
	.quad 0
tramp_entry:
	.quad 0
tramp_end:

/* ---- AP entry in the high half: the trampoline jumps here ---- */
	.text
	.code64
	.globl ap_entry64
ap_entry64:
	movabsq $kmain_ap, %rax
	call *%rax
1:	hlt
	jmp 1b

/*
 * Trap stubs. Each pushes an error code (0 if the CPU does not) and the
 * vector, then trap_common saves the general registers: the stack then
 * holds a struct trapframe (trap.c), 16-byte aligned for the call.
 */
	.macro TRAP_NOERR vec
	.globl trap_stub_\vec
trap_stub_\vec:
	pushq $0
	pushq $\vec
	jmp trap_common
	.endm
	.macro TRAP_ERR vec
	.globl trap_stub_\vec
trap_stub_\vec:
	pushq $\vec
	jmp trap_common
	.endm

	TRAP_NOERR 0
	TRAP_NOERR 1
	TRAP_NOERR 2
	TRAP_NOERR 3
	TRAP_NOERR 4
	TRAP_NOERR 5
	TRAP_NOERR 6
	TRAP_NOERR 7
	TRAP_ERR 8
	TRAP_NOERR 9
	TRAP_ERR 10
	TRAP_ERR 11
	TRAP_ERR 12
	TRAP_ERR 13
	TRAP_ERR 14
	TRAP_NOERR 15
	TRAP_NOERR 16
	TRAP_ERR 17
	TRAP_NOERR 18
	TRAP_NOERR 19
	TRAP_NOERR 20
	TRAP_ERR 21
	TRAP_NOERR 22
	TRAP_NOERR 23
	TRAP_NOERR 24
	TRAP_NOERR 25
	TRAP_NOERR 26
	TRAP_NOERR 27
	TRAP_NOERR 28
	TRAP_ERR 29
	TRAP_ERR 30
	TRAP_NOERR 31
	TRAP_NOERR 240
	TRAP_NOERR 255

trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

/* The stub addresses, for the IDT (trap.c). */
	.section .rodata
	.p2align 3
	.globl trap_stubs
trap_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad trap_stub_\v
	.endr
	.globl trap_stub_tlb, trap_stub_spurious
trap_stub_tlb:
	.quad trap_stub_240
trap_stub_spurious:
	.quad trap_stub_255

	.section .note.GNU-stack, "", @progbits
