/* Test-only stand-in for bcryptprimitives.dll under Wine 8, which lacks
 * ProcessPrng (called by Rust's standard library since 1.78). Built by
 * scripts/ensure-windows.sh and placed next to rowhook.exe in the test
 * directory only; never shipped in the release archive. */
#include <windows.h>

/* RtlGenRandom, exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
