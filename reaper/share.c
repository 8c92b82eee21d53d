#include "share.h"

int
share_fair(int shards, int live)
{
	if (live < 1)
		live = 1;
	return (shards + live - 1) / live;
}

void
share_gate_init(struct share_gate *g, int unlimited)
{
	pthread_mutex_init(&g->mu, NULL);
	g->held = 0;
	g->share = 0;
	g->unlimited = unlimited;
}

void
share_gate_destroy(struct share_gate *g)
{
	pthread_mutex_destroy(&g->mu);
}

int
share_set(struct share_gate *g, int share)
{
	int lower;

	pthread_mutex_lock(&g->mu);
	lower = share < g->share;
	g->share = share;
	pthread_mutex_unlock(&g->mu);
	return lower;
}

int
share_room(struct share_gate *g)
{
	int room;

	pthread_mutex_lock(&g->mu);
	room = g->unlimited || g->held < g->share;
	pthread_mutex_unlock(&g->mu);
	return room;
}

int
share_reserve(struct share_gate *g)
{
	int ok;

	pthread_mutex_lock(&g->mu);
	ok = g->unlimited || g->held < g->share;
	if (ok)
		g->held++;
	pthread_mutex_unlock(&g->mu);
	return ok;
}

void
share_drop(struct share_gate *g)
{
	pthread_mutex_lock(&g->mu);
	if (g->held > 0)
		g->held--;
	pthread_mutex_unlock(&g->mu);
}

int
share_claim_release(struct share_gate *g)
{
	int over;

	pthread_mutex_lock(&g->mu);
	over = !g->unlimited && g->held > g->share;
	if (over)
		g->held--;
	pthread_mutex_unlock(&g->mu);
	return over;
}
