# Turns files into C byte arrays at configure time (re-run when they change).

function(sj_hex_array out_var path)
  file(READ ${path} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  set(${out_var} "${hex}0x00" PARENT_SCOPE)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
endfunction()

function(sj_embed_file out path symbol)
  sj_hex_array(bytes ${path})
  file(SIZE ${path} size)
  file(WRITE ${out}.tmp
       "#include <stddef.h>\n"
       "extern const char ${symbol}[];\nextern const size_t ${symbol}_len;\n"
       "const char ${symbol}[] = {${bytes}};\n"
       "const size_t ${symbol}_len = ${size};\n")
  file(COPY_FILE ${out}.tmp ${out} ONLY_IF_DIFFERENT)
endfunction()

# migrations/NNNN_name.sql -> { NNNN, "NNNN_name.sql", sql } in version order.
function(sj_embed_migrations out files)
  set(body "#include \"migrations.h\"\n")
  set(table "")
  set(i 0)
  foreach(path IN LISTS files)
    get_filename_component(name ${path} NAME)
    string(REGEX MATCH "^[0-9]+" version ${name})
    if(NOT version)
      message(FATAL_ERROR "migration ${name} does not start with a number")
    endif()
    math(EXPR version "${version} + 0")
    sj_hex_array(bytes ${path})
    string(APPEND body "static const char migration_${i}[] = {${bytes}};\n")
    string(APPEND table "  { ${version}, \"${name}\", migration_${i} },\n")
    math(EXPR i "${i} + 1")
  endforeach()
  string(APPEND body "const struct migration migrations_all[] = {\n${table}};\n"
                     "const size_t migrations_count = ${i};\n")
  file(WRITE ${out}.tmp "${body}")
  file(COPY_FILE ${out}.tmp ${out} ONLY_IF_DIFFERENT)
endfunction()
