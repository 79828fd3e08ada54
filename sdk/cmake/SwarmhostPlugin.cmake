# swarmhost_add_plugin(<target> SOURCES ...)
# Builds a loadable plugin module named <target>.so that links only the SDK
# headers and exports nothing but swh_plugin_entry.
function(swarmhost_add_plugin target)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE swarmhost::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED SWH_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SWH_PLUGIN_OUTPUT_DIR})
  endif()
endfunction()
