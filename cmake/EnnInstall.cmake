# cmake --install: header, libraries, the enn command, a CMake package and a pkg-config file.
include(CMakePackageConfigHelpers)
install(FILES include/enn.h include/enn_vulkan.h include/enn_data.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS enn_static enn_shared EXPORT ennTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ennTargets NAMESPACE enn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/enn)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/ennConfig.cmake.in
  ${CMAKE_BINARY_DIR}/ennConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/enn)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/ennConfigVersion.cmake COMPATIBILITY ${ENN_PACKAGE_COMPATIBILITY})
install(FILES ${CMAKE_BINARY_DIR}/ennConfig.cmake ${CMAKE_BINARY_DIR}/ennConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/enn)
file(RELATIVE_PATH ENN_PC_RELATIVE_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_SOURCE_DIR}/cmake/enn.pc.in ${CMAKE_BINARY_DIR}/enn.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/enn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
