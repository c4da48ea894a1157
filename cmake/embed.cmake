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

# Appends to ${body_var} one table `<name>_all[]` + `<name>_count` of
# { NNNN, "NNNN_name.sql", sql } built from `files`, in the order given.
function(sj_migration_table body_var name files)
  set(body "${${body_var}}")
  set(table "")
  set(i 0)
  foreach(path IN LISTS files)
    get_filename_component(file_name ${path} NAME)
    string(REGEX MATCH "^[0-9]+" version ${file_name})
    if(NOT version)
      message(FATAL_ERROR "migration ${path} does not start with a number")
    endif()
    math(EXPR version "${version} + 0")
    sj_hex_array(bytes ${path})
    string(APPEND body "static const char ${name}_${i}[] = {${bytes}};\n")
    string(APPEND table "  { ${version}, \"${file_name}\", ${name}_${i} },\n")
    math(EXPR i "${i} + 1")
  endforeach()
  if(i EQUAL 0)
    # C has no empty arrays; a zero count tells readers there is nothing.
    set(table "  { 0, \"\", \"\" },\n")
  endif()
  string(APPEND body "extern const struct migration ${name}_all[];\n"
                     "extern const size_t ${name}_count;\n"
                     "const struct migration ${name}_all[] = {\n${table}};\n"
                     "const size_t ${name}_count = ${i};\n")
  set(${body_var} "${body}" PARENT_SCOPE)
endfunction()

# migrations/NNNN_name.sql -> migrations_all[] in version order, and for each
# subdirectory migrations/<kind>/ holding NNNN_name.sql files (the export
# targets' own schemas: postgres, clickhouse) -> migrations_<kind>_all[], all
# in one generated file so the core library's source list stays fixed.
function(sj_embed_migrations out files)
  set(body "#include \"journal/migrations.h\"\n")
  sj_migration_table(body migrations "${files}")
  list(GET files 0 first)
  get_filename_component(dir ${first} DIRECTORY)
  file(GLOB children LIST_DIRECTORIES true CONFIGURE_DEPENDS RELATIVE ${dir} ${dir}/*)
  list(SORT children)
  foreach(kind IN LISTS children)
    if(NOT IS_DIRECTORY ${dir}/${kind})
      continue()
    endif()
    if(NOT kind MATCHES "^[a-z][a-z0-9_]*$")
      message(FATAL_ERROR "migrations/${kind}: directory names must be C identifiers")
    endif()
    file(GLOB kind_files CONFIGURE_DEPENDS ${dir}/${kind}/*.sql)
    list(SORT kind_files)
    sj_migration_table(body migrations_${kind} "${kind_files}")
  endforeach()
  file(WRITE ${out}.tmp "${body}")
  file(COPY_FILE ${out}.tmp ${out} ONLY_IF_DIFFERENT)
endfunction()

# src/http/ui/* -> routes_ui_assets[] + routes_ui_asset_count (see
# src/http/routes_ui.h): each file's name, content type (by extension; an
# unknown one stops the configure, so nothing is served as a guess), bytes,
# size, and a strong ETag from its SHA-256 (the content, not the time, so a
# rebuild of the same file keeps every browser's cache valid).
function(sj_embed_ui out files)
  set(body "#include \"http/routes_ui.h\"\n")
  set(table "")
  set(i 0)
  foreach(path IN LISTS files)
    get_filename_component(name ${path} NAME)
    if(NOT name MATCHES "^[A-Za-z0-9_.-]+$")
      message(FATAL_ERROR "ui asset ${name}: only [A-Za-z0-9_.-] in names")
    endif()
    if(name MATCHES "\\.html$")
      set(type "text/html; charset=utf-8")
    elseif(name MATCHES "\\.js$")
      set(type "text/javascript; charset=utf-8")
    elseif(name MATCHES "\\.css$")
      set(type "text/css; charset=utf-8")
    elseif(name MATCHES "\\.svg$")
      set(type "image/svg+xml")
    elseif(name MATCHES "\\.json$")
      set(type "application/json")
    elseif(name MATCHES "\\.png$")
      set(type "image/png")
    else()
      message(FATAL_ERROR "ui asset ${name}: no content type for its extension")
    endif()
    file(SHA256 ${path} digest)
    string(SUBSTRING ${digest} 0 32 digest)
    file(SIZE ${path} size)
    sj_hex_array(bytes ${path})
    string(APPEND body "static const unsigned char routes_ui_bytes_${i}[] = {${bytes}};\n")
    string(APPEND table "  { \"${name}\", \"${type}\", \"\\\"${digest}\\\"\", routes_ui_bytes_${i}, ${size} },\n")
    math(EXPR i "${i} + 1")
  endforeach()
  if(i EQUAL 0)
    message(FATAL_ERROR "no ui assets in ${files}")
  endif()
  string(APPEND body "const struct routes_ui_asset routes_ui_assets[] = {\n${table}};\n"
                     "const size_t routes_ui_asset_count = ${i};\n")
  file(WRITE ${out}.tmp "${body}")
  file(COPY_FILE ${out}.tmp ${out} ONLY_IF_DIFFERENT)
endfunction()
