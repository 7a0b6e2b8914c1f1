/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmark's floor: an empty program on every tracepoint the agent hooks. */
int empty(void *ctx)
{
	return 0;
}
