/* tailcall.c: the forms optimisers produce: tail jumps, tags through registers and variables,
 * the same import called repeatedly from one function. Expected tags: expected.json ("tailcall"). */
#include "pooltop_ddk.h"

static PVOID g_keep[16];

/* With -O2/-Os gcc ends these with `jmp [__imp_...]` (or `jmp` to the import thunk). */
NOINLINE PVOID AllocTail(SIZE_T n)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, n, TAG('T', 'a', 'i', 'l'));
}

NOINLINE PVOID AllocTail2(SIZE_T n)
{
    return ExAllocatePool2(POOL_FLAG_NON_PAGED, n, TAG('T', 'a', 'i', '2'));
}

NOINLINE void FreeTail(PVOID p)
{
    ExFreePoolWithTag(p, TAG('T', 'f', 'r', 'e'));
}

/* The tag lives in a variable: memory at -O0, a stack slot (volatile) at every level. */
NOINLINE PVOID AllocVariable(SIZE_T n)
{
    ULONG tag = TAG('V', 'a', 'r', 'i');
    volatile ULONG kept = TAG('V', 'o', 'l', 'a');
    PVOID p = ExAllocatePoolWithTag(NonPagedPoolNx, n, tag);
    PVOID q = ExAllocatePoolWithTag(NonPagedPoolNx, n, kept);
    g_keep[9] = q;
    return p;
}

/* Several calls to one import from one function: gcc -O2 loads the IAT entry into a callee-saved
 * register once and calls through it. */
NOINLINE void AllocLoop(int count)
{
    int i;
    for (i = 0; i < count; i++) {
        g_keep[i & 7] = ExAllocatePoolWithTag(NonPagedPoolNx, 16, TAG('L', 'o', 'p', '1'));
        g_keep[8] = ExAllocatePoolWithTag(PagedPool, 32, TAG('L', 'o', 'p', '2'));
        ExFreePoolWithTag(g_keep[8], TAG('L', 'o', 'p', '2'));
    }
}

/* The tag is a parameter: no analysis confined to one function can name it at the call inside;
 * the caller's constant is a tag-shaped immediate ("immediate", never "call-site"). */
NOINLINE PVOID AllocWithTag(SIZE_T n, ULONG tag)
{
    return ExAllocatePoolWithTag(NonPagedPoolNx, n, tag);
}

static void NTAPI Unload(PDRIVER_OBJECT DriverObject)
{
    (void)DriverObject;
    FreeTail(g_keep[10]);
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    (void)RegistryPath;
    g_keep[10] = AllocTail(40);
    g_keep[11] = AllocTail2(48);
    g_keep[12] = AllocVariable(56);
    g_keep[13] = AllocWithTag(72, TAG('P', 'a', 'r', 'm'));
    AllocLoop(3);
    DriverObject->DriverUnload = Unload;
    return STATUS_SUCCESS;
}
