/*
 * pldl.c: a library that plrobust dlopens (test_robust.sh): pldl_run
 * creates two threads, each running pldl_worker (a contended mutex and a
 * nanosleep), joins them and returns 42.
 */
#include <pthread.h>
#include <time.h>

static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;

void *pldl_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lk);
	struct timespec ts = { 0, 10000000 };
	nanosleep(&ts, NULL);
	pthread_mutex_unlock(&lk);
	return NULL;
}

int pldl_run(void)
{
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, pldl_worker, NULL) != 0)
			return -1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return 42;
}
