/* libpng for Swift (Debian's libpng-dev; pkg-config libpng): decoding PNG images for the
 * image-folder data sets and encoding the pictures `ply inspect` writes. */
#include <png.h>
