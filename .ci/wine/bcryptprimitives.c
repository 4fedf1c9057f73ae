/* bcryptprimitives.dll stand-in for Wine before 9.0, which has no such DLL.
   Rust's std (1.78+) imports ProcessPrng from it on Windows, so without it
   every Rust program fails to load under Wine 8 and exits 53 without a
   word. ProcessPrng is RtlGenRandom (advapi32!SystemFunction036) here.
   Built and installed into a throwaway prefix by .ci/wine-tests.sh:
     x86_64-w64-mingw32-gcc -O2 -s -shared -o bcryptprimitives.dll bcryptprimitives.c */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
