/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The file backend: regular files and block devices through io_uring, one ring per reactor.
 *
 * submit_request only prepares SQEs; the channel's poller submits everything prepared since
 * its last run with one io_uring_enter() and reaps completions from the CQ without a system
 * call. O_DIRECT is used when the file system takes it (checked by a probe read at open);
 * otherwise the file is used buffered, with a warning. With O_DIRECT, buffers that are not
 * 4 KiB aligned go through a bounce buffer. A short transfer is finished through a bounce
 * buffer for the remaining bytes.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev_priv.h"

#define RING_ENTRIES 512
#define DIO_ALIGN    4096
#define REAP_BATCH   64

struct file_bdev {
	struct uraid_bdev bdev;
	char ch_dev; /* its address is our io_device (the bdev's own address is the layer's) */
	int fd;
	bool direct;
	bool blkdev;
	bool readonly;
	char *filename;
};

struct file_channel {
	struct io_uring ring;
	unsigned inflight;
	unsigned prepared;
	STAILQ_HEAD(, uraid_bdev_io) waiting; /* no SQE free: retried by the poller */
	struct uraid_poller *poller;
};

struct file_io {
	void *bounce;
	uint64_t bounce_off; /* byte offset within the request where the bounce buffer starts */
	uint64_t done;	     /* bytes transferred so far */
	int falloc_mode;
};

static inline struct file_io *
fio_of(struct uraid_bdev_io *io)
{
	return (struct file_io *)io->driver_ctx;
}

static bool
iov_aligned(const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (DIO_ALIGN - 1))
			return false;
	}
	return true;
}

/* Prepare the transfer of bytes [fio->done, total) of a READ or WRITE. */
static int
file_prep_rw(struct file_bdev *fb, struct io_uring_sqe *sqe, struct uraid_bdev_io *io)
{
	struct file_io *fio = fio_of(io);
	uint64_t total = io->num_blocks * fb->bdev.block_size;
	uint64_t off = io->offset_blocks * fb->bdev.block_size;
	bool write = io->type == URAID_IO_WRITE;
	int rw_flags = (write && (io->flags & URAID_IO_FUA)) ? RWF_DSYNC : 0;

	if (fio->done == 0 && fio->bounce == NULL &&
	    (!fb->direct || iov_aligned(io->iov, io->iovcnt))) {
		if (write)
			io_uring_prep_writev2(sqe, fb->fd, io->iov, (unsigned)io->iovcnt, off,
					      rw_flags);
		else
			io_uring_prep_readv(sqe, fb->fd, io->iov, (unsigned)io->iovcnt, off);
		return 0;
	}
	if (fio->bounce == NULL || fio->bounce_off != fio->done) {
		/* (Re)bounce from the first byte not yet transferred. */
		free(fio->bounce);
		fio->bounce = aligned_alloc(DIO_ALIGN, align_up_u64(total - fio->done, DIO_ALIGN));
		if (fio->bounce == NULL)
			return -ENOMEM;
		fio->bounce_off = fio->done;
		if (write)
			uraid_iov_to_buf(fio->bounce, io->iov, io->iovcnt, fio->done,
					 total - fio->done);
	}
	if (write)
		io_uring_prep_write(sqe, fb->fd, fio->bounce, (unsigned)(total - fio->done),
				    off + fio->done);
	else
		io_uring_prep_read(sqe, fb->fd, fio->bounce, (unsigned)(total - fio->done),
				   off + fio->done);
	if (rw_flags)
		sqe->rw_flags = rw_flags;
	return 0;
}

static int
file_prep(struct file_bdev *fb, struct file_channel *fch, struct uraid_bdev_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&fch->ring);
	struct file_io *fio = fio_of(io);
	uint64_t off = io->offset_blocks * fb->bdev.block_size;
	uint64_t len = io->num_blocks * fb->bdev.block_size;
	int rc = 0;

	if (sqe == NULL)
		return -EAGAIN;
	switch (io->type) {
	case URAID_IO_READ:
	case URAID_IO_WRITE:
		rc = file_prep_rw(fb, sqe, io);
		break;
	case URAID_IO_FLUSH:
		io_uring_prep_fsync(sqe, fb->fd, IORING_FSYNC_DATASYNC);
		break;
	case URAID_IO_UNMAP:
	case URAID_IO_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, fb->fd, fio->falloc_mode, (off_t)off, (off_t)len);
		break;
	default:
		rc = -EINVAL;
		break;
	}
	if (rc != 0) {
		/* Give the SQE back as a no-op that completes to nobody. */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);
		fch->prepared++;
		return rc;
	}
	io_uring_sqe_set_data(sqe, io);
	fch->prepared++;
	fch->inflight++;
	return 0;
}

static void
file_io_done(struct uraid_bdev_io *io, int status)
{
	struct file_io *fio = fio_of(io);

	if (status == 0 && io->type == URAID_IO_READ && fio->bounce != NULL)
		uraid_iov_from_buf(io->iov, io->iovcnt, fio->bounce_off, fio->bounce,
				   io->num_blocks * io->bdev->block_size - fio->bounce_off);
	free(fio->bounce);
	fio->bounce = NULL;
	uraid_bdev_io_complete(io, status);
}

/* Block devices: discard and zero-out are ioctls, done synchronously. */
static int
file_blkdev_ioctl(struct file_bdev *fb, struct uraid_bdev_io *io)
{
	uint64_t range[2] = {io->offset_blocks * fb->bdev.block_size,
			     io->num_blocks * fb->bdev.block_size};
	unsigned long req = io->type == URAID_IO_UNMAP ? BLKDISCARD : BLKZEROOUT;

	if (ioctl(fb->fd, req, range) != 0) {
		LOG_ERR("%s: %s failed: %s", fb->bdev.name,
			io->type == URAID_IO_UNMAP ? "discard" : "zero-out", strerror(errno));
		return -EIO;
	}
	return 0;
}

static int
file_submit(void *ch_ctx, struct uraid_bdev_io *io)
{
	struct file_bdev *fb = io->bdev->ctx;
	struct file_channel *fch = ch_ctx;
	struct file_io *fio = fio_of(io);
	int rc;

	if (fb->readonly && io->type != URAID_IO_READ && io->type != URAID_IO_FLUSH)
		return -EROFS;
	memset(fio, 0, sizeof(*fio));
	if (fb->blkdev && (io->type == URAID_IO_UNMAP || io->type == URAID_IO_WRITE_ZEROES)) {
		uraid_bdev_io_complete_deferred(io, file_blkdev_ioctl(fb, io));
		return 0;
	}
	fio->falloc_mode =
		FALLOC_FL_KEEP_SIZE |
		(io->type == URAID_IO_UNMAP ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
	if (!STAILQ_EMPTY(&fch->waiting)) {
		STAILQ_INSERT_TAIL(&fch->waiting, io, link);
		return 0;
	}
	rc = file_prep(fb, fch, io);
	if (rc == -EAGAIN) {
		STAILQ_INSERT_TAIL(&fch->waiting, io, link);
		return 0;
	}
	return rc;
}

static void
file_complete_cqe(struct file_bdev *fb, struct file_channel *fch, struct uraid_bdev_io *io, int res)
{
	struct file_io *fio = fio_of(io);
	uint64_t total;

	fch->inflight--;
	switch (io->type) {
	case URAID_IO_READ:
	case URAID_IO_WRITE:
		total = io->num_blocks * fb->bdev.block_size;
		if (res == -EAGAIN || res == -EINTR)
			break; /* resubmit as it is */
		if (res <= 0) {
			LOG_ERR("%s: %s of %lu blocks at block %lu failed: %s", fb->bdev.name,
				io->type == URAID_IO_READ ? "read" : "write",
				(unsigned long)io->num_blocks, (unsigned long)io->offset_blocks,
				res == 0 ? "end of file" : strerror(-res));
			file_io_done(io, -EIO);
			return;
		}
		fio->done += (uint64_t)res;
		if (fio->done >= total) {
			file_io_done(io, 0);
			return;
		}
		if (fio->bounce != NULL && io->type == URAID_IO_READ) {
			/* Keep what the bounce already holds before re-bouncing the rest. */
			uraid_iov_from_buf(io->iov, io->iovcnt, fio->bounce_off, fio->bounce,
					   fio->done - fio->bounce_off);
		}
		break; /* short transfer: the rest goes through a bounce buffer */
	case URAID_IO_WRITE_ZEROES:
		if (res == -EOPNOTSUPP && fio->falloc_mode & FALLOC_FL_ZERO_RANGE) {
			/* A punched hole reads back as zeroes too. */
			fio->falloc_mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
			break;
		}
		/* fall through */
	default:
		if (res < 0)
			LOG_ERR("%s: %s failed: %s", fb->bdev.name,
				io->type == URAID_IO_FLUSH ? "flush" : "unmap/zeroes",
				strerror(-res));
		file_io_done(io, res < 0 ? -EIO : 0);
		return;
	}
	/* Resubmit: queue behind anything already waiting for an SQE. */
	STAILQ_INSERT_TAIL(&fch->waiting, io, link);
}

static int
file_poll(void *arg)
{
	struct file_channel *fch = arg;
	struct io_uring_cqe *cqes[REAP_BATCH];
	struct uraid_bdev_io *io;
	unsigned n;
	int busy = 0;

	while ((io = STAILQ_FIRST(&fch->waiting)) != NULL) {
		int rc = file_prep(io->bdev->ctx, fch, io);

		if (rc == -EAGAIN)
			break;
		STAILQ_REMOVE_HEAD(&fch->waiting, link);
		if (rc != 0)
			file_io_done(io, rc == -ENOMEM ? -ENOMEM : -EIO);
		busy = 1;
	}
	if (fch->prepared) {
		int rc = io_uring_submit(&fch->ring);

		if (rc >= 0)
			fch->prepared = 0;
		else if (rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
			LOG_ERR("io_uring_submit failed: %s", strerror(-rc));
		busy = 1;
	}
	n = io_uring_peek_batch_cqe(&fch->ring, cqes, REAP_BATCH);
	for (unsigned i = 0; i < n; i++) {
		struct uraid_bdev_io *done = io_uring_cqe_get_data(cqes[i]);
		int res = cqes[i]->res;

		io_uring_cqe_seen(&fch->ring, cqes[i]);
		if (done != NULL)
			file_complete_cqe(done->bdev->ctx, fch, done, res);
	}
	if (n > 0)
		busy = 1;
	/* In flight counts as busy: the reactor keeps polling the CQ instead of sleeping. */
	return (busy || fch->inflight || !STAILQ_EMPTY(&fch->waiting)) ? URAID_POLLER_BUSY
								       : URAID_POLLER_IDLE;
}

static int
file_channel_create(void *io_device UNUSED, void *ctx)
{
	struct file_channel *fch = ctx;
	int rc = io_uring_queue_init(RING_ENTRIES, &fch->ring, 0);

	if (rc < 0) {
		LOG_ERR("io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	STAILQ_INIT(&fch->waiting);
	fch->poller = uraid_poller_register(file_poll, fch, 0);
	if (fch->poller == NULL) {
		io_uring_queue_exit(&fch->ring);
		return -ENOMEM;
	}
	return 0;
}

static void
file_channel_destroy(void *io_device UNUSED, void *ctx)
{
	struct file_channel *fch = ctx;

	uraid_poller_unregister(&fch->poller);
	io_uring_queue_exit(&fch->ring);
}

static bool
file_io_type_supported(struct uraid_bdev *bdev UNUSED, enum uraid_io_type type UNUSED)
{
	return true;
}

static int
file_destruct(struct uraid_bdev *bdev)
{
	struct file_bdev *fb = bdev->ctx;

	uraid_io_device_unregister(&fb->ch_dev, NULL);
	close(fb->fd);
	free(fb->filename);
	free(fb);
	return 0;
}

static const struct uraid_bdev_fn_table file_fn = {
	.submit_request = file_submit,
	.io_type_supported = file_io_type_supported,
	.destruct = file_destruct,
};

const char *
uraid_bdev_get_path(const struct uraid_bdev *bdev)
{
	return bdev != NULL && bdev->fn == &file_fn
		       ? ((const struct file_bdev *)bdev->ctx)->filename
		       : NULL;
}

/* A probe read through O_DIRECT tells whether the file system and sector size allow it. */
static bool
direct_probe(int fd, uint32_t block_size)
{
	void *buf = aligned_alloc(DIO_ALIGN, DIO_ALIGN);
	bool ok;

	if (buf == NULL)
		return false;
	ok = pread(fd, buf, block_size, 0) >= 0;
	free(buf);
	return ok;
}

int
file_bdev_create(const struct file_bdev_opts *o, struct uraid_bdev **out, char *err, size_t err_len)
{
	int oflags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct file_bdev *fb;
	uint32_t block_size = o->block_size;
	uint64_t size;
	struct stat st;
	int fd, rc;

	if (strlen(o->name) == 0 || strlen(o->name) >= URAID_BDEV_NAME_MAX) {
		err_set(err, err_len, "name must be 1 to %d characters", URAID_BDEV_NAME_MAX - 1);
		return -EINVAL;
	}
	if (block_size != 0 && block_size != 512 && block_size != 4096) {
		err_set(err, err_len, "block_size %u: must be 512 or 4096", block_size);
		return -EINVAL;
	}
	fd = open(o->filename, oflags | O_DIRECT);
	if (fd < 0 && errno == ENOENT && o->create_bytes != 0 && !o->readonly) {
		uint32_t bs = block_size ? block_size : 4096;

		if (o->create_bytes % bs != 0) {
			err_set(err, err_len, "size %lu is not a multiple of the block size %u",
				(unsigned long)o->create_bytes, bs);
			return -EINVAL;
		}
		fd = open(o->filename, oflags | O_CREAT | O_EXCL, 0600);
		if (fd >= 0 && ftruncate(fd, (off_t)o->create_bytes) != 0) {
			rc = -errno;
			err_set(err, err_len, "%s: cannot size new file: %s", o->filename,
				strerror(errno));
			close(fd);
			unlink(o->filename);
			return rc;
		}
		if (fd >= 0) {
			close(fd);
			fd = open(o->filename, oflags | O_DIRECT);
		}
	}
	if (fd < 0 && errno == EINVAL)
		fd = open(o->filename, oflags); /* file system without O_DIRECT */
	if (fd < 0) {
		rc = -errno;
		err_set(err, err_len, "%s: %s", o->filename, strerror(errno));
		return rc;
	}
	/* One writer per file across processes: a second daemon (or bench) on the same member
	 * would corrupt it. The lock goes with the descriptor. */
	if (!o->readonly && flock(fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		err_set(err, err_len, "%s: %s", o->filename,
			rc == -EBUSY ? "in use by another process (is another uraid running?)"
				     : strerror(errno));
		close(fd);
		return rc;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		err_set(err, err_len, "%s: %s", o->filename, strerror(errno));
		goto err_fd;
	}
	if (S_ISBLK(st.st_mode)) {
		int ssz = 512;

		if (ioctl(fd, BLKGETSIZE64, &size) != 0 || ioctl(fd, BLKSSZGET, &ssz) != 0) {
			rc = -errno;
			err_set(err, err_len, "%s: cannot read device size: %s", o->filename,
				strerror(errno));
			goto err_fd;
		}
		if (block_size == 0)
			block_size = ssz == 4096 ? 4096 : 512;
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
		if (block_size == 0)
			block_size = 4096;
	} else {
		rc = -EINVAL;
		err_set(err, err_len, "%s: not a regular file or block device", o->filename);
		goto err_fd;
	}
	if (size == 0 || size % block_size != 0) {
		rc = -EINVAL;
		err_set(err, err_len,
			"%s: size %lu is not a non-zero multiple of the block size %u", o->filename,
			(unsigned long)size, block_size);
		goto err_fd;
	}

	fb = calloc(1, sizeof(*fb));
	if (fb == NULL) {
		rc = -ENOMEM;
		goto err_fd;
	}
	fb->fd = fd;
	fb->blkdev = S_ISBLK(st.st_mode);
	fb->readonly = o->readonly;
	fb->direct = (fcntl(fd, F_GETFL) & O_DIRECT) != 0;
	if (fb->direct && !direct_probe(fd, block_size)) {
		close(fd);
		fb->fd = fd = open(o->filename, oflags);
		fb->direct = false;
		if (fd < 0) {
			rc = -errno;
			err_set(err, err_len, "%s: %s", o->filename, strerror(errno));
			goto err_fb;
		}
	}
	if (!fb->direct)
		LOG_WARNING("%s: %s does not take O_DIRECT; using it buffered (page cache)",
			    o->name, o->filename);
	fb->filename = strdup(o->filename);
	snprintf(fb->bdev.name, sizeof(fb->bdev.name), "%s", o->name);
	fb->bdev.product = "io_uring file";
	fb->bdev.block_size = block_size;
	fb->bdev.num_blocks = size / block_size;
	fb->bdev.write_cache = true;
	fb->bdev.driver_ctx_size = sizeof(struct file_io);
	fb->bdev.io_device = &fb->ch_dev;
	fb->bdev.fn = &file_fn;
	fb->bdev.ctx = fb;
	if (o->uuid)
		memcpy(fb->bdev.uuid, o->uuid, 16);
	uraid_io_device_register(&fb->ch_dev, file_channel_create, file_channel_destroy,
				 sizeof(struct file_channel), o->name);
	rc = uraid_bdev_register(&fb->bdev);
	if (rc != 0) {
		err_set(err, err_len,
			rc == -EEXIST ? "a bdev named %s exists already" : "cannot register %s",
			o->name);
		uraid_io_device_unregister(&fb->ch_dev, NULL);
		goto err_fb;
	}
	*out = &fb->bdev;
	return 0;

err_fb:
	free(fb->filename);
	free(fb);
err_fd:
	if (fd >= 0)
		close(fd);
	return rc;
}
