/* basic.c: direct calls to each pool API with a constant tag.
 * Expected tags: tests/data/drivers/expected.json ("basic"). */
#include "pooltop_ddk.h"

static PVOID g_keep[8];

NOINLINE static void Allocate(SIZE_T n)
{
    g_keep[0] = ExAllocatePoolWithTag(NonPagedPoolNx, n, TAG('B', 'a', 's', '1'));
    g_keep[1] = ExAllocatePool2(POOL_FLAG_NON_PAGED, n * 2, TAG('B', 'a', 's', '2'));
    g_keep[2] = ExAllocatePoolWithQuotaTag(PagedPool, n + 16, TAG('B', 'q', 't', '1'));
    g_keep[3] = ExAllocatePoolWithTagPriority(NonPagedPoolNx, n + 32, TAG('B', 'p', 'r', '1'),
                                              HighPoolPriority);
    g_keep[4] = ExAllocatePool3(POOL_FLAG_PAGED, n + 48, TAG('B', 'p', '3', '1'), 0, 0);
    /* PROTECTED_POOL is a flag, not part of the tag: pooltop must report "Bpro". */
    g_keep[5] = ExAllocatePoolWithTag(PagedPool, 96, TAG('B', 'p', 'r', 'o') | PROTECTED_POOL);
}

NOINLINE static void Release(PVOID foreign)
{
    ExFreePoolWithTag(g_keep[0], TAG('B', 'a', 's', '1'));
    ExFreePoolWithTag(g_keep[5], TAG('B', 'p', 'r', 'o') | PROTECTED_POOL);
    /* A tag that only ever appears in a free (the block came from somewhere else). */
    ExFreePoolWithTag(foreign, TAG('B', 'f', 'r', '1'));
}

static void NTAPI Unload(PDRIVER_OBJECT DriverObject)
{
    (void)DriverObject;
    Release(g_keep[1]);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)RegistryPath;
    Allocate(64);
    DriverObject->DriverUnload = Unload;
    return g_keep[0] ? STATUS_SUCCESS : STATUS_NO_MEMORY;
}
