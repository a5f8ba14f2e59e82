/*
 * console.c: the serial console (COM1, 0x3f8, polled) and a small printf.
 *
 * kprintf() formats a whole line into a buffer on the stack and writes it
 * under one spinlock, so lines from different CPUs never interleave. The
 * lock records its owner: a CPU that faults while printing (or a panic
 * anywhere) switches to panic mode, which takes the lock if it can within a
 * short while and otherwise writes anyway: a report of a fault must get out.
 *
 * Formats: %s %c %d %u %x %p %%, with l/ll/z length, a 0-padded width
 * and # (0x) for %x.
 */
#include "kern.h"

#define COM1 0x3f8

static lf_atomic_u32 console_lock;      /* (a) owner CPU + 1, or 0 */
static lf_atomic_u32 console_panicking; /* (a) */

void console_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void console_putc(char ch)
{
	for (unsigned spins = 0; spins < 100000; spins++)
		if (inb(COM1 + 5) & 0x20)
			break;
	outb(COM1, (uint8_t)ch);
}

static void console_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			console_putc('\r');
		console_putc(s[i]);
	}
}

static unsigned console_me(void)
{
	/* Before the GS base is set (very early) %gs:0 is not a cpu. */
	struct cpu *c = this_cpu();
	return c ? c->idx + 1 : 1;
}

static bool console_take(void)
{
	unsigned me = console_me();
	bool panicking = lf_load_u32(&console_panicking, LF_RELAXED) != 0;
	uint64_t t0 = panicking ? rdtsc() : 0;
	for (;;) {
		uint32_t exp = 0;
		/* Acquire: pairs with the release in console_give(). */
		if (lf_cas_u32(&console_lock, &exp, me, LF_ACQUIRE))
			return true;
		if (panicking && (exp == me || rdtsc() - t0 > 200000000ull))
			return false; /* write without the lock */
		lf_platform_pause();
		panicking = lf_load_u32(&console_panicking, LF_RELAXED) != 0;
		if (panicking && t0 == 0)
			t0 = rdtsc();
	}
}

static void console_give(bool held)
{
	if (held)
		/* Release: pairs with the acquire in console_take(). */
		lf_store_u32(&console_lock, 0, LF_RELEASE);
}

void console_panic_mode(void)
{
	lf_store_u32(&console_panicking, 1, LF_RELAXED);
}

/*
 * The buffer holds the longest lines the kernel prints (the command line,
 * at most 1023 bytes with its prefix; a test line, whose ops_per_cpu list
 * grows with the CPUs). A line that still does not fit is cut with a
 * visible mark and keeps its newline, so it never runs into the next one.
 */
#define KPRINTF_MAX 4096

void kprintf(const char *fmt, ...)
{
	static const char cut[] = " [cut]\n";
	char buf[KPRINTF_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((size_t)n == sizeof(buf) - 1 && buf[n - 1] != '\n') {
		memcpy(buf + sizeof(buf) - sizeof(cut), cut, sizeof(cut));
		n = (int)sizeof(buf) - 1;
	}
	bool held = console_take();
	console_write(buf, (size_t)n);
	console_give(held);
}

int ksnprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = kvsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return r;
}

struct kbuf {
	char *p;
	size_t len, cap;
};

static void kbuf_put(struct kbuf *b, char ch)
{
	if (b->len + 1 < b->cap)
		b->p[b->len++] = ch;
}

static void kbuf_num(struct kbuf *b, uint64_t v, unsigned base, bool neg,
		     unsigned width, char pad)
{
	char tmp[24];
	unsigned n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width > n) {
		kbuf_put(b, pad);
		width--;
	}
	while (n)
		kbuf_put(b, tmp[--n]);
}

static uint64_t kbuf_arg(va_list *ap, int lng, bool sgn, bool *neg)
{
	*neg = false;
	if (!sgn)
		return lng ? va_arg(*ap, uint64_t) : va_arg(*ap, unsigned);
	int64_t s = lng ? va_arg(*ap, int64_t) : va_arg(*ap, int);
	if (s < 0) {
		*neg = true;
		return (uint64_t)0 - (uint64_t)s;
	}
	return (uint64_t)s;
}

int kvsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct kbuf b = { buf, 0, n };
	va_list aq;
	va_copy(aq, ap);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			kbuf_put(&b, *f);
			continue;
		}
		f++;
		char pad = ' ';
		unsigned width = 0;
		int lng = 0;
		bool alt = false;
		if (*f == '#') {
			alt = true;
			f++;
		}
		if (*f == '0')
			pad = '0';
		while (*f >= '0' && *f <= '9')
			width = width * 10 + (unsigned)(*f++ - '0');
		while (*f == 'l' || *f == 'z') {
			lng = 1;
			f++;
		}
		bool neg;
		uint64_t v;
		switch (*f) {
		case 'd':
			v = kbuf_arg(&aq, lng, true, &neg);
			kbuf_num(&b, v, 10, neg, width, pad);
			break;
		case 'u':
			v = kbuf_arg(&aq, lng, false, &neg);
			kbuf_num(&b, v, 10, false, width, pad);
			break;
		case 'x':
			v = kbuf_arg(&aq, lng, false, &neg);
			if (alt) {
				kbuf_put(&b, '0');
				kbuf_put(&b, 'x');
			}
			kbuf_num(&b, v, 16, false, width, pad);
			break;
		case 'p':
			kbuf_put(&b, '0');
			kbuf_put(&b, 'x');
			kbuf_num(&b, (uint64_t)(uintptr_t)va_arg(aq, void *),
				 16, false, 16, '0');
			break;
		case 'c':
			kbuf_put(&b, (char)va_arg(aq, int));
			break;
		case 's': {
			const char *s = va_arg(aq, const char *);
			for (s = s ? s : "(null)"; *s; s++)
				kbuf_put(&b, *s);
			break;
		}
		case '%':
			kbuf_put(&b, '%');
			break;
		default:
			kbuf_put(&b, '?');
			if (*f == '\0')
				f--;
		}
	}
	va_end(aq);
	if (b.cap)
		b.p[b.len] = '\0';
	return (int)b.len;
}
