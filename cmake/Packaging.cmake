# Debian packages with CPack (docs/deployment.md, "Install the Debian package"):
#
#   swarmhost          component `daemon`: /usr/bin/swarmhost (a link to
#                      /usr/lib/swarmhost/swarmhost, beside the
#                      swarmhost-plugin-host it execs), the in-tree plugins in
#                      /usr/lib/swarmhost/plugins, the conffile
#                      /etc/swarmhost/swarmhost.yaml and the systemd unit.
#   swarmhost-sdk-dev  component `sdk` (sdk/CMakeLists.txt): headers, the CMake
#                      package and the pkg-config file; Architecture: all.
#
#   cmake --build build --target swh_daemon && cd build && cpack
#
# puts both .deb files in build/packages/. Depends: comes from the shared
# libraries the binaries and plugins actually link (dpkg-shlibdeps, from
# dpkg-dev). The files that only packaging uses live in packaging/debian/.
# Included from the top-level CMakeLists.txt after the plugin targets exist
# (_swh_plugin_targets).

include(GNUInstallDirs)
set(_swh_debian ${PROJECT_SOURCE_DIR}/packaging/debian)
set(_swh_staged ${PROJECT_BINARY_DIR}/packaging)
set(_swh_private lib/swarmhost) # not on PATH: the daemon and the helper it execs

# ---- component daemon -------------------------------------------------------
install(TARGETS swarmhost swarmhost-plugin-host RUNTIME DESTINATION ${_swh_private} COMPONENT daemon)
install(TARGETS ${_swh_plugin_targets} LIBRARY DESTINATION ${_swh_private}/plugins COMPONENT daemon)
# /usr/bin/swarmhost is a relative link: the daemon finds
# swarmhost-plugin-host beside /proc/self/exe, the link's target.
file(MAKE_DIRECTORY ${_swh_staged})
file(CREATE_LINK ../lib/swarmhost/swarmhost ${_swh_staged}/swarmhost SYMBOLIC)
install(FILES ${_swh_staged}/swarmhost DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT daemon)
# Absolute: /etc and /lib are outside the /usr prefix.
install(FILES ${_swh_debian}/swarmhost.yaml DESTINATION /etc/swarmhost COMPONENT daemon)
install(FILES ${_swh_debian}/swarmhost.service DESTINATION /lib/systemd/system COMPONENT daemon)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/templates/ DESTINATION ${CMAKE_INSTALL_DATADIR}/swarmhost/templates
  COMPONENT daemon FILES_MATCHING PATTERN "*.yaml")

# gzip -9n: what Debian policy asks of man pages and changelogs (-n: no
# time stamp, so the package is reproducible).
function(swh_gzip source output)
  execute_process(COMMAND gzip -9n -c ${source} OUTPUT_FILE ${output} RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "gzip ${source} failed (${_rc})")
  endif()
  set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${source})
endfunction()
swh_gzip(${_swh_debian}/swarmhost.1 ${_swh_staged}/swarmhost.1.gz)
swh_gzip(${_swh_debian}/changelog ${_swh_staged}/changelog.Debian.gz)
install(FILES ${_swh_staged}/swarmhost.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT daemon)
foreach(_component_package IN ITEMS daemon:swarmhost sdk:swarmhost-sdk-dev)
  string(REPLACE ":" ";" _pair ${_component_package})
  list(GET _pair 0 _component)
  list(GET _pair 1 _package)
  install(FILES ${_swh_debian}/copyright ${_swh_staged}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_package} COMPONENT ${_component})
endforeach()

# ---- CPack ------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME swarmhost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "swarmhost maintainers <maintainers@users.noreply.b-seed-68efc0b6.example>")
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL daemon sdk)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME swarmhost)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION net)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SHLIBDEPS ON)
# The maintainer scripts call deb-systemd-helper / deb-systemd-invoke.
set(CPACK_DEBIAN_DAEMON_PACKAGE_DEPENDS "init-system-helpers (>= 1.52)")
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_EXTRA
  ${_swh_debian}/conffiles ${_swh_debian}/postinst ${_swh_debian}/prerm ${_swh_debian}/postrm)
set(CPACK_DEBIAN_DAEMON_DESCRIPTION "chat-session host daemon whose parts are plugins
swarmhost serves LLM chat sessions over HTTP (its own API and an
OpenAI-compatible one). Storage, model providers, middleware, hooks and
session types are plugins loaded through a stable C ABI; this package holds
the daemon, the in-tree plugins (SQLite, PostgreSQL, Redis and MongoDB
storage; OpenAI, Anthropic and echo providers; middleware, hooks, session
types), a manifest in /etc/swarmhost and a hardened systemd unit.")

set(CPACK_DEBIAN_SDK_PACKAGE_NAME swarmhost-sdk-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_SDK_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_SDK_PACKAGE_SHLIBDEPS OFF) # headers and CMake files only
set(CPACK_DEBIAN_SDK_DESCRIPTION "plugin SDK for the swarmhost daemon
The C99 ABI headers every swarmhost plugin is built against, the optional
header-only C++20 layer, a CMake package (find_package(swarmhost-sdk),
swarmhost_add_plugin()) and a pkg-config file (swarmhost-sdk). Plugins link
no library of the host.")

include(CPack)
