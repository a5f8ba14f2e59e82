/*
 * mc_tests.h: the model-checking harnesses, one table per module, each
 * ending with NULL. Names are module.config; "self." tests are broken
 * algorithms that the checker must catch (run with --expect-fail).
 */
#ifndef MC_TESTS_H
#define MC_TESTS_H

#include "mc.h"

extern const struct mc_test *const mc_tests_self[];
extern const struct mc_test *const mc_tests_stack[];
extern const struct mc_test *const mc_tests_vlock[];
extern const struct mc_test *const mc_tests_epoch[];
extern const struct mc_test *const mc_tests_buddy[];
extern const struct mc_test *const mc_tests_buddy_unit[];
extern const struct mc_test *const mc_tests_buddy_lower[];
/* Version 3 over units: in mc_run_units only (BUDDY_CORE_SHIFT 5). */
extern const struct mc_test *const mc_tests_buddy_units[];
extern const struct mc_test *const mc_tests_vas[];
extern const struct mc_test *const mc_tests_kmem[];

#endif /* MC_TESTS_H */
