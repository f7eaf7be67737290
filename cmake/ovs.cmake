# Builds Open vSwitch's C library (lib/libopenvswitch.a) from Debian's openvswitch-source tarball,
# the same version as the installed switch, and exposes it as the imported target ovs::openvswitch.
#
# Why from source: Debian 12 ships no libopenvswitch-dev. The build lives in
# VPCGUARD_OVS_BUILD_DIR and is keyed by the tarball's checksum (scripts/build-ovs.sh), so
# rebuilding vpcguard never rebuilds OVS.

if(NOT EXISTS "${VPCGUARD_OVS_TARBALL}")
  message(FATAL_ERROR "Open vSwitch source tarball not found at ${VPCGUARD_OVS_TARBALL}.\n"
    "Install it with: apt-get install openvswitch-source openvswitch-switch")
endif()

# Version of the tarball, from its configure.ac (AC_INIT(openvswitch, X.Y.Z, ...)).
execute_process(
  COMMAND tar -xzOf "${VPCGUARD_OVS_TARBALL}" openvswitch/configure.ac
  OUTPUT_VARIABLE _ovs_configure_ac RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "Cannot read configure.ac from ${VPCGUARD_OVS_TARBALL}")
endif()
string(REGEX MATCH "AC_INIT\\(openvswitch, ([0-9.]+)" _m "${_ovs_configure_ac}")
set(VPCGUARD_OVS_VERSION "${CMAKE_MATCH_1}")

# Version of the installed switch: the library must speak exactly the same dialect.
find_program(OVS_VSWITCHD ovs-vswitchd PATHS /usr/sbin /usr/lib/openvswitch-switch)
if(NOT OVS_VSWITCHD)
  message(FATAL_ERROR "ovs-vswitchd not found. Install it with: apt-get install openvswitch-switch")
endif()
execute_process(COMMAND "${OVS_VSWITCHD}" --version OUTPUT_VARIABLE _vsd_out)
string(REGEX MATCH "\\) ([0-9.]+)" _m "${_vsd_out}")
set(_installed_version "${CMAKE_MATCH_1}")
if(NOT _installed_version STREQUAL VPCGUARD_OVS_VERSION)
  message(FATAL_ERROR "Open vSwitch version mismatch: the source tarball ${VPCGUARD_OVS_TARBALL} "
    "is ${VPCGUARD_OVS_VERSION} but the installed ovs-vswitchd is ${_installed_version}.\n"
    "Install matching packages: apt-get install openvswitch-source=<v> openvswitch-switch=<v>")
endif()
message(STATUS "Open vSwitch ${VPCGUARD_OVS_VERSION}: library built in ${VPCGUARD_OVS_BUILD_DIR}")

set(_ovs_src "${VPCGUARD_OVS_BUILD_DIR}/openvswitch")
set(_ovs_lib "${_ovs_src}/lib/.libs/libopenvswitch.a")
add_custom_command(
  OUTPUT "${_ovs_lib}"
  BYPRODUCTS "${_ovs_src}/lib/.libs/libopenvswitchavx512.a"
  COMMAND "${PROJECT_SOURCE_DIR}/scripts/build-ovs.sh" "${VPCGUARD_OVS_TARBALL}" "${VPCGUARD_OVS_BUILD_DIR}"
  DEPENDS "${VPCGUARD_OVS_TARBALL}" "${PROJECT_SOURCE_DIR}/scripts/build-ovs.sh"
  COMMENT "Building the Open vSwitch ${VPCGUARD_OVS_VERSION} library (once per build directory, ~3 min)"
  USES_TERMINAL)
add_custom_target(ovs_library DEPENDS "${_ovs_lib}")

add_library(ovs_openvswitch STATIC IMPORTED GLOBAL)
set_target_properties(ovs_openvswitch PROPERTIES IMPORTED_LOCATION "${_ovs_lib}")
# The include directories only exist after the build; create them so CMake accepts them.
file(MAKE_DIRECTORY "${_ovs_src}/include" "${_ovs_src}/lib")
target_include_directories(ovs_openvswitch SYSTEM INTERFACE "${_ovs_src}" "${_ovs_src}/include"
  "${_ovs_src}/lib")
target_link_libraries(ovs_openvswitch INTERFACE "${_ovs_src}/lib/.libs/libopenvswitchavx512.a"
  OpenSSL::SSL OpenSSL::Crypto Threads::Threads rt m
  atomic)
add_dependencies(ovs_openvswitch ovs_library)
add_library(ovs::openvswitch ALIAS ovs_openvswitch)
