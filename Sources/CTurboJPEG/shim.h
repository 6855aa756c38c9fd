/* libjpeg-turbo's TurboJPEG API for Swift (Debian's libturbojpeg0-dev; pkg-config
 * libturbojpeg): decoding JPEG images for the image-folder data sets. */
#include <turbojpeg.h>
