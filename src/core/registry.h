/*
 * registry.h: the thread registry is an RCU list: liburcu's protocol
 * (urcu/rculist.h: link with a publishing store, walk with dependent loads,
 * unlink, reclaim after synchronize_rcu) on a struct cds_list_head, with
 * the link/walk stores and loads written as C11 atomics so that
 * ThreadSanitizer can check the publication too.  Writers (link, unlink)
 * hold gt_session.reg_lock; walkers take no lock.
 * May call: nothing (liburcu's list layout, C11 atomics).
 */
#ifndef GT_REGISTRY_H
#define GT_REGISTRY_H

#include <urcu/list.h>

static inline void gt_reg_add_tail(struct cds_list_head *n, struct cds_list_head *head)
{
	struct cds_list_head *prev = head->prev;
	n->next = head;
	n->prev = prev;
	head->prev = n;
	__atomic_store_n(&prev->next, n, __ATOMIC_RELEASE); /* publish */
}

static inline void gt_reg_del(struct cds_list_head *n)
{
	n->next->prev = n->prev;
	__atomic_store_n(&n->prev->next, n->next, __ATOMIC_RELEASE);
	/* n->next stays valid for walkers standing on n. */
}

static inline struct cds_list_head *gt_reg_next(struct cds_list_head *p)
{
	return __atomic_load_n(&p->next, __ATOMIC_ACQUIRE);
}

#define gt_reg_for_each(t, head)                                                   \
	for (struct cds_list_head *gt_p_ = gt_reg_next(head);                        \
	     gt_p_ != (head) && ((t) = caa_container_of(gt_p_, struct gt_thread, node), 1); \
	     gt_p_ = gt_reg_next(gt_p_))

#endif
