/* lin.c: see lin.h. */
#include "lin.h"

#include <stdio.h>
#include <string.h>

#include "mc.h"

void lin_reset(struct lin_history *h)
{
	h->n = 0;
}

struct lin_op *lin_call(struct lin_history *h, int kind, uint64_t a0,
			uint64_t a1)
{
	if (h->n >= LIN_MAX_OPS)
		mc_fail("history longer than %d operations", LIN_MAX_OPS);
	struct lin_op *op = &h->op[h->n++];
	*op = (struct lin_op){ .thread = mc_self(),
			       .kind = kind,
			       .arg = { a0, a1 },
			       .call = mc_tick(),
			       .ret = UINT64_MAX };
	mc_trace("call %d (%llx, %llx)", kind, (unsigned long long)a0,
		 (unsigned long long)a1);
	return op;
}

void lin_ret(struct lin_op *op, uint64_t r0, uint64_t r1)
{
	op->res[0] = r0;
	op->res[1] = r1;
	op->ret = mc_tick();
	mc_trace("return %d: (%llx, %llx)", op->kind, (unsigned long long)r0,
		 (unsigned long long)r1);
}

/* May op i come next, the ops in done being already placed? */
static bool lin_minimal(const struct lin_history *h, uint32_t done, unsigned i)
{
	for (unsigned j = 0; j < h->n; j++)
		if (j != i && !(done & (1u << j)) &&
		    h->op[j].ret < h->op[i].call)
			return false;
	return true;
}

static bool lin_search(const struct lin_history *h, const struct lin_model *m,
		       unsigned char *state, uint32_t done)
{
	if (done == (1u << h->n) - 1)
		return m->final == NULL || m->final(state);
	unsigned char saved[LIN_MAX_STATE];
	for (unsigned i = 0; i < h->n; i++) {
		if ((done & (1u << i)) || !lin_minimal(h, done, i))
			continue;
		memcpy(saved, state, m->size);
		if (m->apply(state, &h->op[i]) &&
		    lin_search(h, m, state, done | (1u << i)))
			return true;
		memcpy(state, saved, m->size);
	}
	return false;
}

void lin_check(const struct lin_history *h, const struct lin_model *m)
{
	unsigned char state[LIN_MAX_STATE];
	if (m->size > LIN_MAX_STATE)
		mc_fail("model state too large");
	m->init(state);
	if (lin_search(h, m, state, 0))
		return;
	char buf[400];
	size_t len = 0;
	for (unsigned i = 0; i < h->n && len < sizeof(buf) - 64; i++) {
		const struct lin_op *op = &h->op[i];
		len += (size_t)snprintf(
			buf + len, sizeof(buf) - len,
			" [t%u %s(%llx,%llx)=%llx,%llx @%llu-%llu]", op->thread,
			m->names ? m->names[op->kind] : "op",
			(unsigned long long)op->arg[0],
			(unsigned long long)op->arg[1],
			(unsigned long long)op->res[0],
			(unsigned long long)op->res[1],
			(unsigned long long)op->call,
			(unsigned long long)op->ret);
	}
	mc_fail("not linearizable:%s", buf);
}
