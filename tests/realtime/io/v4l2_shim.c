/*
 * LD_PRELOAD shim that plays a v4l2loopback output device for tests, on machines
 * whose kernel has no V4L2. pyvirtualcam's native Linux backend imports only
 * open, ioctl, write and close from libc (checked with `nm -D`); it finds devices
 * by trying open("/dev/videoN") for N = 0..99, so no stat/opendir is needed.
 *
 *   SHIM_V4L2_DEVICE  the one device path that "exists" (e.g. /dev/video4);
 *                     every other /dev/video* open fails with ENOENT, so a real
 *                     device on the test machine is never touched.
 *   SHIM_V4L2_OUTPUT  file that receives every byte written to the device;
 *                     "<output>.fmt" receives "width height fourcc sizeimage frames".
 *
 * VIDIOC_QUERYCAP answers driver "v4l2 loopback" with VIDEO_OUTPUT capability,
 * VIDIOC_S_FMT/G_FMT store and return the format; any other request on the fake
 * device fails with ENOTTY, so a library change shows up as a test failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/videodev2.h>

static int fake_fd = -1;
static struct v4l2_format fake_format;
static long frames_written;

static void write_sidecar(void) {
    const char *out = getenv("SHIM_V4L2_OUTPUT");
    char path[4096];
    if (out == NULL || snprintf(path, sizeof path, "%s.fmt", out) >= (int)sizeof path)
        return;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    unsigned int fourcc = fake_format.fmt.pix.pixelformat;
    fprintf(f, "%u %u %c%c%c%c %u %ld\n", fake_format.fmt.pix.width,
            fake_format.fmt.pix.height, fourcc & 0xff, (fourcc >> 8) & 0xff,
            (fourcc >> 16) & 0xff, (fourcc >> 24) & 0xff, fake_format.fmt.pix.sizeimage,
            frames_written);
    fclose(f);
}

static int open_fake(const char *path, int flags, mode_t mode,
                     int (*real_open)(const char *, int, ...), int *handled) {
    *handled = 0;
    if (path == NULL || strncmp(path, "/dev/video", 10) != 0)
        return -1;
    *handled = 1;
    const char *device = getenv("SHIM_V4L2_DEVICE");
    const char *out = getenv("SHIM_V4L2_OUTPUT");
    if (device == NULL || out == NULL || strcmp(path, device) != 0) {
        errno = ENOENT;
        return -1;
    }
    (void)flags;
    (void)mode;
    int fd = real_open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        fake_fd = fd;
        frames_written = 0;
        memset(&fake_format, 0, sizeof fake_format);
    }
    return fd;
}

#define DEFINE_OPEN(name)                                                          \
    int name(const char *path, int flags, ...) {                                   \
        static int (*real)(const char *, int, ...);                                \
        if (real == NULL)                                                          \
            real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);       \
        mode_t mode = 0;                                                           \
        if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {               \
            va_list ap;                                                            \
            va_start(ap, flags);                                                   \
            mode = (mode_t)va_arg(ap, int);                                        \
            va_end(ap);                                                            \
        }                                                                          \
        int handled;                                                               \
        int fd = open_fake(path, flags, mode, real, &handled);                     \
        return handled ? fd : real(path, flags, mode);                             \
    }

DEFINE_OPEN(open)
DEFINE_OPEN(open64)

int ioctl(int fd, unsigned long request, ...) {
    static int (*real)(int, unsigned long, ...);
    if (real == NULL)
        real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (fd < 0 || fd != fake_fd)
        return real(fd, request, arg);
    if (request == VIDIOC_QUERYCAP) {
        struct v4l2_capability *cap = arg;
        memset(cap, 0, sizeof *cap);
        strcpy((char *)cap->driver, "v4l2 loopback");
        strcpy((char *)cap->card, "swapcam test shim");
        cap->capabilities = V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_DEVICE_CAPS;
        cap->device_caps = V4L2_CAP_VIDEO_OUTPUT;
        return 0;
    }
    if (request == VIDIOC_S_FMT) {
        struct v4l2_format *format = arg;
        if (format->type != V4L2_BUF_TYPE_VIDEO_OUTPUT) {
            errno = EINVAL;
            return -1;
        }
        struct v4l2_pix_format *pix = &format->fmt.pix;
        /* What v4l2loopback fills in for the planar/greyscale formats it is given. */
        unsigned int bits = pix->pixelformat == V4L2_PIX_FMT_GREY ? 8
                          : (pix->pixelformat == V4L2_PIX_FMT_YUYV ||
                             pix->pixelformat == V4L2_PIX_FMT_UYVY) ? 16 : 12;
        pix->bytesperline = pix->pixelformat == V4L2_PIX_FMT_YUYV ||
                            pix->pixelformat == V4L2_PIX_FMT_UYVY ? pix->width * 2 : pix->width;
        pix->sizeimage = pix->width * pix->height * bits / 8;
        fake_format = *format;
        write_sidecar();
        return 0;
    }
    if (request == VIDIOC_G_FMT) {
        *(struct v4l2_format *)arg = fake_format;
        return 0;
    }
    errno = ENOTTY;
    return -1;
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (real == NULL)
        real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    if (fd < 0 || fd != fake_fd)
        return real(fd, buf, count);
    /* A loopback device takes one whole frame per write. */
    if (fake_format.fmt.pix.sizeimage == 0 || count != fake_format.fmt.pix.sizeimage) {
        errno = EINVAL;
        return -1;
    }
    size_t done = 0;
    while (done < count) {
        ssize_t n = real(fd, (const char *)buf + done, count - done);
        if (n < 0)
            return -1;
        done += (size_t)n;
    }
    frames_written++;
    return (ssize_t)count;
}

int close(int fd) {
    static int (*real)(int);
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "close");
    if (fd >= 0 && fd == fake_fd) {
        write_sidecar();
        fake_fd = -1;
    }
    return real(fd);
}
