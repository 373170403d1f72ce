// SPDX-License-Identifier: GPL-2.0
/*
 * vduse_fuzz: the responder, a thread that plays the daemon badly.
 *
 * It polls every device node the batch has open and answers the
 * requests it reads: mostly right, but also with FAILED or garbage
 * results, after a wrong id, a short or reserved-field write, twice,
 * late, or (one in a hundred) never: then the request times out and the
 * device breaks.
 * Each batch picks, per device name, a good daemon (60 %) or a bad one;
 * in "good" mode (the parent's clean-up) every answer is right.
 */
#include <linux/vduse.h>
#include <linux/virtio_config.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

const char *fz_req_name(uint32_t type)
{
	static const char *const names[] = {
		[VDUSE_GET_VQ_STATE] = "GET_VQ_STATE",
		[VDUSE_SET_STATUS] = "SET_STATUS",
		[VDUSE_UPDATE_IOTLB] = "UPDATE_IOTLB",
		[VDUSE_SET_VQ_GROUP_ASID] = "SET_VQ_GROUP_ASID",
		[VDUSE_SET_VQ_READY] = "SET_VQ_READY",
		[VDUSE_SUSPEND] = "SUSPEND",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] :
	       "UNKNOWN";
}

static void good_reply(struct fz_rng *r, const struct vduse_dev_request *req,
		       struct vduse_dev_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->request_id = req->request_id;
	resp->result = VDUSE_REQ_RESULT_OK;
	switch (req->type) {
	case VDUSE_GET_VQ_STATE:
		resp->vq_state.index = req->vq_state.index;
		if (fz_pct(r, 50)) {
			resp->vq_state.split.avail_index = fz_below(r, 512);
		} else {
			resp->vq_state.packed.last_avail_counter = fz_below(r, 2);
			resp->vq_state.packed.last_avail_idx = fz_below(r, 512);
			resp->vq_state.packed.last_used_counter = fz_below(r, 2);
			resp->vq_state.packed.last_used_idx = fz_below(r, 512);
		}
		if (fz_pct(r, 5))
			fz_fill(r, &resp->vq_state, sizeof(resp->vq_state));
		break;
	case VDUSE_SET_STATUS:
	case VDUSE_UPDATE_IOTLB:
	case VDUSE_SET_VQ_GROUP_ASID:
	case VDUSE_SET_VQ_READY:
	case VDUSE_SUSPEND:
		break;
	default:
		resp->result = VDUSE_REQ_RESULT_FAILED;
		break;
	}
}

static long put(struct fz *f, int fd, const void *buf, size_t len,
		const char *what, uint32_t id)
{
	return fz_call(f, write(fd, buf, len), "resp write fd %d %s id %u len %zu",
		       fd, what, id, len);
}

void fz_resp_answer(struct fz *f, struct fz_rng *r, int fd,
		    const struct vduse_dev_request *req, bool good)
{
	struct vduse_dev_response resp, bad;
	unsigned int x = good ? 0 : fz_below(r, 100);

	fz_log(f, "resp fd %d got %s id %u", fd, fz_req_name(req->type),
	       req->request_id);
	good_reply(r, req, &resp);
	if (x >= 75 && x < 83) {
		resp.result = VDUSE_REQ_RESULT_FAILED;
	} else if (x >= 83 && x < 87) {
		resp.result = fz_u32(r);
	} else if (x >= 87 && x < 90) {
		bad = resp;
		bad.request_id += 1 + fz_below(r, 1000);
		put(f, fd, &bad, sizeof(bad), "wrong id", bad.request_id);
	} else if (x >= 90 && x < 92) {
		put(f, fd, &resp, fz_below(r, sizeof(resp)), "short",
		    resp.request_id);
	} else if (x >= 92 && x < 94) {
		bad = resp;
		bad.reserved[fz_below(r, 4)] = 1;
		put(f, fd, &bad, sizeof(bad), "reserved set", bad.request_id);
	} else if (x >= 94 && x < 96) {
		usleep(1000 * (10 + fz_below(r, 200)));
	} else if (x >= 99) {
		fz_log(f, "resp fd %d leaves id %u unanswered", fd,
		       req->request_id);
		fz_count(C_SILENT);
		return;
	}
	if (put(f, fd, &resp, sizeof(resp), "reply", resp.request_id) ==
	    sizeof(resp)) {
		fz_count(C_REPLIES);
		if (req->type == VDUSE_SET_STATUS && !resp.result &&
		    (req->s.status & VIRTIO_CONFIG_S_DRIVER_OK))
			fz_count(C_DRIVER_OK);
	}
	if (resp.result != VDUSE_REQ_RESULT_OK)
		fz_count(C_BAD_REPLIES);
	if (x >= 96 && x < 99)
		put(f, fd, &resp, sizeof(resp), "again", resp.request_id);
}

static void *resp_main(void *arg)
{
	struct fz *f = arg;
	struct pollfd p[FZ_DEV_SLOTS];
	struct vduse_dev_request req;
	bool good[FZ_DEV_SLOTS];
	int n, i;

	while (!__atomic_load_n(&f->resp_stop, __ATOMIC_ACQUIRE)) {
		n = 0;
		pthread_mutex_lock(&f->lock);
		for (i = 0; i < FZ_DEV_SLOTS; i++) {
			if (f->dev[i].fd < 0)
				continue;
			good[n] = f->resp_good || !f->sloppy[f->dev[i].name];
			p[n].fd = f->dev[i].fd;
			p[n].events = POLLIN;
			p[n++].revents = 0;
		}
		pthread_mutex_unlock(&f->lock);
		if (!n) {
			usleep(20000);
			continue;
		}
		if (poll(p, n, 20) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			/*
			 * The op loop may have closed it and the number may
			 * name another file now: harmless, one more junk read.
			 */
			if (read(p[i].fd, &req, sizeof(req)) != sizeof(req))
				continue;
			fz_count(C_REQS);
			fz_resp_answer(f, &f->resp_rng, p[i].fd, &req,
				       good[i]);
		}
	}
	return NULL;
}

void fz_resp_start(struct fz *f)
{
	f->resp_stop = 0;
	f->resp_running = !pthread_create(&f->resp_thread, NULL, resp_main, f);
}

void fz_resp_stop(struct fz *f)
{
	if (!f->resp_running)
		return;
	__atomic_store_n(&f->resp_stop, 1, __ATOMIC_RELEASE);
	pthread_join(f->resp_thread, NULL);
	f->resp_running = false;
}
