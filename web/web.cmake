# The dashboard (web/): its files are compiled into the server as one C
# table (web/embed.cmake writes it), so a server needs nothing at run time:
# no files beside the binary, no CDN, no build step in the browser.
# index.html names the other files under /assets/<version>/, version being
# a hash of their contents: a browser keeps them for a year and fetches
# new ones when they change (src/server/api_ui.c serves them).
file(GLOB SKED_WEB_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/web/*.html
     ${CMAKE_SOURCE_DIR}/web/*.js ${CMAKE_SOURCE_DIR}/web/*.css ${CMAKE_SOURCE_DIR}/web/*.svg
     ${CMAKE_SOURCE_DIR}/web/*.png)
set(SKED_WEB_C ${CMAKE_BINARY_DIR}/web/web_assets.c)
add_custom_command(
  OUTPUT ${SKED_WEB_C}
  COMMAND ${CMAKE_COMMAND} -DOUT=${SKED_WEB_C} "-DFILES=${SKED_WEB_FILES}"
          -P ${CMAKE_SOURCE_DIR}/web/embed.cmake
  DEPENDS ${SKED_WEB_FILES} ${CMAKE_SOURCE_DIR}/web/embed.cmake
  COMMENT "Embedding the dashboard (web/)"
  VERBATIM)
target_sources(sked_server PRIVATE ${SKED_WEB_C})
