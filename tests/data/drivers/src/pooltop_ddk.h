/* Minimal kernel declarations for pooltop's fixture drivers (tests/data/drivers).
 *
 * Written for these fixtures: only what the sources below need, declared by hand so the build does
 * not depend on mingw-w64's DDK headers. Import libraries come from ntoskrnl.def / ndis.def.
 *
 * FIXTURE_THUNKS=1 leaves out __declspec(dllimport): gcc then calls the import library's
 * `jmp [__imp_X]` stub with a direct `call rel32` (the mingw thunk style pooltop must follow).
 */
#ifndef POOLTOP_DDK_H
#define POOLTOP_DDK_H

#define POOL_TAGGING 1

typedef unsigned char UCHAR;
typedef unsigned short USHORT;
typedef unsigned long ULONG; /* 32-bit on both mingw-w64 targets (LLP64 / ILP32) */
typedef unsigned long long ULONG64;
typedef long NTSTATUS;
typedef void *PVOID;
typedef __SIZE_TYPE__ SIZE_T;
typedef unsigned int UINT;
typedef int POOL_TYPE;
typedef ULONG64 POOL_FLAGS;

#define NTAPI __stdcall
#define STATUS_SUCCESS ((NTSTATUS)0)
#define STATUS_NO_MEMORY ((NTSTATUS)0xC0000017L)

#define NonPagedPool 0
#define PagedPool 1
#define NonPagedPoolNx 512
#define HighPoolPriority 32
#define POOL_FLAG_NON_PAGED 0x40ULL
#define POOL_FLAG_PAGED 0x100ULL
#define PROTECTED_POOL 0x80000000UL

/* A tag as it reads in memory (and in poolmon): TAG('P','o','o','l') is stored as "Pool". */
#define TAG(a, b, c, d) ((ULONG)(a) | ((ULONG)(b) << 8) | ((ULONG)(c) << 16) | ((ULONG)(d) << 24))

#if defined(FIXTURE_THUNKS) && FIXTURE_THUNKS
#define NTIMPORT
#else
#define NTIMPORT __declspec(dllimport)
#endif

typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    unsigned short *Buffer;
} UNICODE_STRING, *PUNICODE_STRING;

typedef struct _DRIVER_OBJECT {
    void *Reserved[16];
    void (NTAPI *DriverUnload)(struct _DRIVER_OBJECT *);
} DRIVER_OBJECT, *PDRIVER_OBJECT;

NTIMPORT PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
NTIMPORT PVOID NTAPI ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
NTIMPORT PVOID NTAPI ExAllocatePoolWithTagPriority(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                                   int Priority);
NTIMPORT PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
NTIMPORT PVOID NTAPI ExAllocatePool3(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag,
                                     const void *ExtendedParameters, ULONG ExtendedParametersCount);
NTIMPORT void NTAPI ExFreePoolWithTag(PVOID P, ULONG Tag);
NTIMPORT void NTAPI ExFreePool(PVOID P);
NTIMPORT ULONG __cdecl DbgPrint(const char *Format, ...);

NTIMPORT NTSTATUS NTAPI NdisAllocateMemoryWithTag(PVOID *VirtualAddress, UINT Length, ULONG Tag);
NTIMPORT void NTAPI NdisFreeMemory(PVOID VirtualAddress, UINT Length, UINT MemoryFlags);

#define NOINLINE __attribute__((noinline, noipa))

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath);

#endif
