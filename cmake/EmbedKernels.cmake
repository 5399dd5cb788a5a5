# Embeds cl/*.cl into the library as byte arrays, so the library needs no files at run time.
# (Byte arrays rather than raw string literals: no escaping rules, no compiler string-length limits.)
# At run time CLBNB_KERNEL_DIR=<dir> makes the library read <dir>/<name>.cl instead.
set(CLBNB_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_kernels_script.cmake)

function(clbnb_embed_kernels)
  cmake_parse_arguments(ARG "" "OUTPUT" "SOURCES" ${ARGN})
  add_custom_command(OUTPUT ${ARG_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${ARG_OUTPUT} "-DSOURCES=${ARG_SOURCES}" -P ${CLBNB_EMBED_SCRIPT}
    DEPENDS ${ARG_SOURCES} ${CLBNB_EMBED_SCRIPT}
    COMMENT "Embedding OpenCL kernels"
    VERBATIM)
endfunction()
