/* datatags.c: tag-like bytes that are NOT pool-call arguments: strings and tables in data, a tag-shaped
 * constant given to DbgPrint in the register ExFreePoolWithTag would use (edx on x64), a comparison.
 * Only "Real" is a call-site tag. Expected tags: expected.json ("datatags"). */
#include "pooltop_ddk.h"

static const char g_banner[] = "DatADatB fixture banner";
volatile ULONG g_table[2] = {TAG('D', 't', 'b', '1'), TAG('D', 't', 'b', '2')};
static PVOID g_block;

NOINLINE static int IsOurs(const ULONG *header)
{
    return *header == TAG('C', 'm', 'p', '1');
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)DriverObject;
    (void)RegistryPath;
    DbgPrint(g_banner, TAG('D', 'b', 'g', '1'));
    g_block = ExAllocatePoolWithTag(NonPagedPoolNx, 64, TAG('R', 'e', 'a', 'l'));
    DbgPrint("%x", TAG('D', 'b', 'g', '2'));
    return IsOurs((const ULONG *)g_table) ? STATUS_NO_MEMORY : STATUS_SUCCESS;
}
