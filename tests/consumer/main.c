/* Links against the installed libenn and calls it: prints the version, lists devices, and
 * reaches the token-text reader (which needs libunistring: a static link must name it). */
#include <enn.h>
#include <enn_data.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    uint32_t count = 0;
    enn_status s = enn_list_devices(NULL, 0, &count);
    printf("libenn %s, %u device(s), status %s\n", enn_version(), count, enn_status_name(s));
    size_t words = 0;
    return strlen(enn_version()) > 0 && enn_status_name(ENN_ERROR_SHAPE)[0] == 'E' &&
                   enn_dtype_size(ENN_DTYPE_F32) == 4 &&
                   enn_vocab_encode(NULL, "ΟΔΥΣΣΕΥΣ", 0, NULL, 0, &words) == ENN_ERROR_INVALID_ARGUMENT
               ? 0
               : 1;
}
