# package.cmake: install rules and the Debian package (CPack DEB), docs/install.md.
#
#   cmake --build build --target package     -> build/vpcguard_<version>_<arch>.deb
#
# Layout (Debian's, whatever CMAKE_INSTALL_PREFIX says: the package is for / of a Debian host):
#   /usr/sbin/vpcguardd, /usr/sbin/vpcguard-apid, /usr/bin/vpcguardctl
#   /usr/share/vpcguard/vpcguard.ovsschema          the state database's schema
#   /etc/vpcguard/vpcguardd.toml                    daemon settings (--settings), a conffile
#   /etc/vpcguard/examples/, /etc/vpcguard/iam/     example policies and IAM documents
#   /etc/vpcguard/policy.toml or policy.d/          NOT shipped: the operator writes it
#   /lib/systemd/system/vpcguardd.service, /etc/init.d/vpcguardd (without systemd)
#   /etc/logrotate.d/vpcguard                       the init script's log, a conffile
#   /usr/share/man/man8/*.8.gz (help2man), /usr/share/doc/vpcguard/
# Test binaries are never installed.

set(VPCGUARD_PKG_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(VPCGUARD_PKG_BUILD ${PROJECT_BINARY_DIR}/packaging)

# --- programs -----------------------------------------------------------------------------------
install(TARGETS vpcguardd vpcguard-apid RUNTIME DESTINATION /usr/sbin)
install(TARGETS vpcguardctl RUNTIME DESTINATION /usr/bin)
install(FILES ${PROJECT_SOURCE_DIR}/state/vpcguard.ovsschema DESTINATION /usr/share/vpcguard)

# --- configuration (every file under /etc is a conffile, listed below) ---------------------------
install(FILES ${VPCGUARD_PKG_DIR}/vpcguardd.toml DESTINATION /etc/vpcguard)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/iam/ DESTINATION /etc/vpcguard/iam
  FILES_MATCHING PATTERN "*.json")
install(PROGRAMS ${VPCGUARD_PKG_DIR}/sysvinit/vpcguardd DESTINATION /etc/init.d)
install(FILES ${VPCGUARD_PKG_DIR}/systemd/vpcguardd.service DESTINATION /lib/systemd/system)
# Rotation of the init script's log (/var/log/vpcguard/vpcguardd.log).
install(FILES ${VPCGUARD_PKG_DIR}/logrotate/vpcguard DESTINATION /etc/logrotate.d)

# Examples: the lab policy and the example directories. Symlinks among them (lab-*/lab.toml)
# become plain copies: dpkg conffiles must be plain files.
file(GLOB _vpcguard_examples CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/configs
  ${PROJECT_SOURCE_DIR}/configs/lab.toml
  ${PROJECT_SOURCE_DIR}/configs/example-dir/*.toml ${PROJECT_SOURCE_DIR}/configs/lab-flowlogs/*.toml
  ${PROJECT_SOURCE_DIR}/configs/lab-mirror/*.toml)
# dpkg's conffiles: computed from the same sources as the install rules.
set(_conffiles "/etc/vpcguard/vpcguardd.toml\n/etc/init.d/vpcguardd\n/etc/logrotate.d/vpcguard\n")
foreach(f IN LISTS _vpcguard_examples)
  get_filename_component(_real ${PROJECT_SOURCE_DIR}/configs/${f} REALPATH)
  get_filename_component(_dir ${f} DIRECTORY)
  get_filename_component(_name ${f} NAME)
  install(FILES ${_real} DESTINATION /etc/vpcguard/examples/${_dir} RENAME ${_name})
  string(APPEND _conffiles "/etc/vpcguard/examples/${f}\n")
endforeach()
file(GLOB _vpcguard_iam CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}/configs/iam ${PROJECT_SOURCE_DIR}/configs/iam/*.json)
foreach(f IN LISTS _vpcguard_iam)
  string(APPEND _conffiles "/etc/vpcguard/iam/${f}\n")
endforeach()
file(WRITE ${VPCGUARD_PKG_BUILD}/conffiles "${_conffiles}")

# --- documentation --------------------------------------------------------------------------------
install(FILES ${VPCGUARD_PKG_DIR}/debian/copyright DESTINATION /usr/share/doc/vpcguard)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION /usr/share/doc/vpcguard)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION /usr/share/doc/vpcguard/docs
  FILES_MATCHING PATTERN "*.md")

# Man pages from --help/--version (help2man), gzipped as Debian wants them.
find_program(HELP2MAN help2man)
find_program(GZIP_PROGRAM gzip)
if(HELP2MAN AND GZIP_PROGRAM)
  set(_man_pages)
  foreach(prog IN ITEMS vpcguardd vpcguardctl vpcguard-apid)
    if(prog STREQUAL "vpcguardctl")
      set(desc "check, import, explain vpcguard policies; AWS CLI verbs of the control API")
    elseif(prog STREQUAL "vpcguard-apid")
      set(desc "the vpcguard control API server (AWS verbs, IAM)")
    else()
      set(desc "AWS VPC security groups and network ACLs on an Open vSwitch bridge")
    endif()
    set(out ${VPCGUARD_PKG_BUILD}/man/${prog}.8)
    # --version-string: vpcguard-apid has no --version; one version for all three.
    add_custom_command(OUTPUT ${out}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${VPCGUARD_PKG_BUILD}/man
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=8 --source=vpcguard
              "--version-string=${PROJECT_VERSION}" "--name=${desc}" --output=${out}
              $<TARGET_FILE:${prog}>
      COMMAND ${GZIP_PROGRAM} -9n -f ${out}
      DEPENDS ${prog}
      COMMENT "help2man ${prog}.8"
      VERBATIM)
    list(APPEND _man_pages ${out}.gz)
  endforeach()
  add_custom_target(man_pages ALL DEPENDS ${_man_pages})
  install(FILES ${_man_pages} DESTINATION /usr/share/man/man8)
else()
  message(WARNING "help2man or gzip not found: the package will have no man pages "
                  "(scripts/deps.sh installs help2man)")
endif()

# --- the Debian package ---------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vpcguard)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "vpcguard maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "AWS VPC security groups, network ACLs, flow logs and mirroring on Open vSwitch")
set(CPACK_PACKAGE_DESCRIPTION
  "vpcguardd enforces security groups (stateful) and network ACLs (stateless) written like the
AWS API on an Open vSwitch bridge, with VPC flow logs and traffic mirroring. vpcguardctl checks,
imports and explains policies; vpcguard-apid serves a control API with AWS IAM policies.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "openvswitch-switch")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# All paths above are absolute (Debian's layout); stage them under DESTDIR.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${VPCGUARD_PKG_BUILD}/conffiles
  ${VPCGUARD_PKG_DIR}/debian/postinst
  ${VPCGUARD_PKG_DIR}/debian/prerm
  ${VPCGUARD_PKG_DIR}/debian/postrm)
# Only the programs, config, docs: never the OVS build tree or tests.
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};ALL;/")
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR})
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/_CPack_Packages_out)
include(CPack)
