/* ndis.c: an NDIS miniport allocates through NdisAllocateMemoryWithTag (ndis.sys), not ntoskrnl.
 * Expected tags: expected.json ("ndis"). */
#include "pooltop_ddk.h"

static PVOID g_block;

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)DriverObject;
    (void)RegistryPath;
    if (NdisAllocateMemoryWithTag(&g_block, 256, TAG('N', 'd', 's', '1')) != 0)
        return STATUS_NO_MEMORY;
    /* ntoskrnl too, so the image also imports a pool API from the kernel. */
    ExFreePoolWithTag(ExAllocatePoolWithTag(NonPagedPoolNx, 8, TAG('N', 'd', 's', '2')),
                      TAG('N', 'd', 's', '2'));
    return STATUS_SUCCESS;
}
