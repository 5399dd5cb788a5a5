# Warning flags for every clbnb target; CLBNB_WERROR (on in CI) turns them into errors.
function(clbnb_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wformat=2 -Wvla -Wno-unused-parameter)
  if(CLBNB_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(CLBNB_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
