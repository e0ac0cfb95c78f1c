# cmake -DSPV=in.spv -DOUT=out.c -DNAME=name -P EnnEmbedSpirv.cmake
file(READ ${SPV} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR words "${hexlen} / 8")
# SPIR-V words are little-endian on disk: reorder each 4-byte group into a 0x... literal.
string(REGEX REPLACE "(..)(..)(..)(..)" "0x\\4\\3\\2\\1u," body "${hex}")
string(REGEX REPLACE "((0x........u,){8})" "\\1\n  " body "${body}")
file(WRITE ${OUT} "/* generated from ${NAME}.spv */\n#include <stddef.h>\n#include <stdint.h>\nconst uint32_t enn_spv_${NAME}[] = {\n  ${body}\n};\nconst size_t enn_spv_${NAME}_size = ${words};\n")
