/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The config loader and the bdev methods: SPDK-shaped configs load; malformed JSON, unknown
 * methods and bad parameters fail with one message that names the method and the parameter.
 */
#include <stdlib.h>
#include <unistd.h>

#include "bdev_util.h"
#include "server/rpc.h"
#include "uraid/array.h"

static int
load(const char *text, char *err, size_t len)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	int rc;

	if (root == NULL) {
		snprintf(err, len, "test JSON: %s", jerr.text);
		return -999;
	}
	rc = config_load_json(root, "test", err, len);
	json_decref(root);
	return rc;
}

#define BDEV_CFG(methods) "{\"subsystems\":[{\"subsystem\":\"bdev\",\"config\":[" methods "]}]}"

static void
expect_error(const char *cfg, const char *needle1, const char *needle2)
{
	char err[512] = "";
	int rc = load(cfg, err, sizeof(err));

	CHECK(rc < 0 && rc != -999);
	if (strstr(err, needle1) == NULL || (needle2 && strstr(err, needle2) == NULL)) {
		fprintf(stderr, "  error message was: %s\n  expected: %s / %s\n", err, needle1,
			needle2 ? needle2 : "");
		CHECK(!"error message does not name what is wrong");
	}
	CHECK(strchr(err, '\n') == NULL); /* one line */
}

static void
test_spdk_config_loads(void)
{
	char err[512] = "";

	REQUIRE(start_manual(1) == 0);
	/* What SPDK's save_config writes, other subsystems and option methods included. */
	CHECK_EQ(load("{\"subsystems\":["
		      "{\"subsystem\":\"accel\",\"config\":[]},"
		      "{\"subsystem\":\"bdev\",\"config\":["
		      "{\"method\":\"bdev_set_options\",\"params\":{\"bdev_io_pool_size\":65535}},"
		      "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"Malloc0\","
		      "\"num_blocks\":2048,\"block_size\":4096,\"physical_block_size\":0,"
		      "\"uuid\":\"5f8b2b5e-0b5c-4a47-9a35-3d2c1d4e0f11\",\"optimal_io_boundary\":0,"
		      "\"md_size\":0,\"dif_type\":0,\"dif_is_head_of_md\":false}},"
		      "{\"method\":\"bdev_malloc_create\",\"params\":{\"num_blocks\":64,"
		      "\"block_size\":512}},"
		      "{\"method\":\"bdev_null_create\",\"params\":{\"name\":\"Null0\","
		      "\"num_blocks\":1024,\"block_size\":512}},"
		      "{\"method\":\"bdev_error_create\",\"params\":{\"base_name\":\"Malloc0\"}},"
		      "{\"method\":\"bdev_error_inject_error\",\"params\":{\"name\":\"EE_Malloc0\","
		      "\"io_type\":\"read\",\"error_type\":\"failure\",\"num\":1}},"
		      "{\"method\":\"bdev_wait_for_examine\"}]}]}",
		      err, sizeof(err)),
		 0);
	if (err[0])
		fprintf(stderr, "%s\n", err);
	CHECK(uraid_bdev_get_by_name("Malloc0") != NULL);
	CHECK(uraid_bdev_get_by_name("Malloc1") != NULL); /* unnamed: MallocN */
	CHECK(uraid_bdev_get_by_name("Null0") != NULL);
	CHECK(uraid_bdev_get_by_name("EE_Malloc0") != NULL);
	{
		char text[37];

		uraid_uuid_format(uraid_bdev_get_uuid(uraid_bdev_get_by_name("Malloc0")), text);
		CHECK(strcmp(text, "5f8b2b5e-0b5c-4a47-9a35-3d2c1d4e0f11") == 0);
	}
	/* Creating a name twice fails and says so. */
	expect_error(BDEV_CFG("{\"method\":\"bdev_null_create\",\"params\":{\"name\":\"Null0\","
			      "\"num_blocks\":8,\"block_size\":512}}"),
		     "Null0", "exists");
	/* Deleting a base that is claimed. */
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_delete\",\"params\":{\"name\":"
			      "\"Malloc0\"}}"),
		     "Malloc0", "in use by 'EE_Malloc0'");
	expect_error(BDEV_CFG("{\"method\":\"bdev_null_delete\",\"params\":{\"name\":"
			      "\"Malloc1\"}}"),
		     "Malloc1", "not a Null disk");
	CHECK_EQ(load(BDEV_CFG("{\"method\":\"bdev_error_delete\",\"params\":{\"name\":"
			       "\"EE_Malloc0\"}},"
			       "{\"method\":\"bdev_malloc_delete\",\"params\":{\"name\":"
			       "\"Malloc0\"}},"
			       "{\"method\":\"bdev_malloc_delete\",\"params\":{\"name\":"
			       "\"Malloc1\"}},"
			       "{\"method\":\"bdev_null_delete\",\"params\":{\"name\":\"Null0\"}}"),
		      err, sizeof(err)),
		 0);
	CHECK(uraid_bdev_get_by_name("Malloc0") == NULL);
	uraid_runtime_stop();
}

static void
test_bad_configs(void)
{
	char err[512];
	char path[] = "/tmp/uraid-cfg-XXXXXX";
	int fd;

	REQUIRE(start_manual(1) == 0);
	expect_error("[1,2]", "top level", NULL);
	expect_error("{\"subsystems\":{}}", "must be an array", NULL);
	expect_error("{\"subsystems\":[{\"config\":[]}]}", "subsystem", NULL);
	expect_error(BDEV_CFG("{\"params\":{}}"), "config[0]", "method");
	expect_error(BDEV_CFG("{\"method\":\"bdev_frobnicate\"}"), "unknown method",
		     "bdev_frobnicate");
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":8}}"),
		     "bdev_malloc_create", "'block_size'");
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":8,\"block_size\":1000}}"),
		     "'block_size'", "512 or 4096");
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":\"eight\",\"block_size\":512}}"),
		     "'num_blocks'", "unsigned integer");
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":-8,\"block_size\":512}}"),
		     "'num_blocks'", NULL);
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":8,\"block_size\":512,\"colour\":\"red\"}}"),
		     "unknown parameter", "'colour'");
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":8,\"block_size\":512,\"md_size\":8}}"),
		     "'md_size'", "not supported");
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":0,\"block_size\":512}}"),
		     "'num_blocks'", NULL);
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":[1]}"),
		     "params must be an object", NULL);
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"x\","
			      "\"num_blocks\":8,\"block_size\":512,\"uuid\":\"zzz\"}}"),
		     "'uuid'", "UUID");
	expect_error(BDEV_CFG("{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"f\","
			      "\"filename\":\"/nonexistent/dir/file\"}}"),
		     "/nonexistent/dir/file", "No such file");
	expect_error(BDEV_CFG("{\"method\":\"bdev_uring_create\",\"params\":{\"name\":\"f\","
			      "\"filename\":\"/tmp/uraid-never-created\",\"size_mb\":0}}"),
		     "uraid-never-created", NULL);
	expect_error(BDEV_CFG("{\"method\":\"bdev_error_create\",\"params\":{\"base_name\":"
			      "\"ghost\"}}"),
		     "ghost", NULL);
	expect_error(BDEV_CFG("{\"method\":\"bdev_error_inject_error\",\"params\":{\"name\":"
			      "\"ghost\",\"io_type\":\"read\"}}"),
		     "ghost", NULL);
	expect_error(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m\","
			      "\"num_blocks\":8,\"block_size\":512}},"
			      "{\"method\":\"bdev_error_create\",\"params\":{\"base_name\":\"m\"}},"
			      "{\"method\":\"bdev_error_inject_error\",\"params\":{\"name\":"
			      "\"EE_m\",\"io_type\":\"sideways\"}}"),
		     "'io_type'", "sideways");
	expect_error(BDEV_CFG("{\"method\":\"bdev_error_inject_error\",\"params\":{\"name\":"
			      "\"EE_m\",\"io_type\":\"read\",\"error_type\":\"gremlins\"}}"),
		     "'error_type'", "gremlins");
	expect_error(BDEV_CFG("{\"method\":\"bdev_fault_inject\",\"params\":{\"name\":"
			      "\"EE_m\",\"io_type\":\"read\",\"probability\":1.5}}"),
		     "'probability'", NULL);

	/* Malformed JSON in a file: the position is given. */
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	CHECK(write(fd, "{\"subsystems\": [\n  {\"subsystem\": \"bdev\",,}\n]}", 45) == 45);
	close(fd);
	CHECK_EQ(config_load_file(path, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, path) != NULL && strstr(err, ":2:") != NULL);
	unlink(path);
	CHECK_EQ(config_load_file("/nonexistent.json", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "/nonexistent.json") != NULL);
	CHECK_EQ(test_delete_bdev("EE_m"), 0);
	CHECK_EQ(test_delete_bdev("m"), 0);
	uraid_runtime_stop();
}

static void
count_method(const struct rpc_method *m UNUSED, void *ctx)
{
	(*(int *)ctx)++;
}

static void
test_get_bdevs_and_methods(void)
{
	struct rpc_request req = {0};
	char err[512];
	json_t *params;
	int n = 0;

	REQUIRE(start_manual(1) == 0);
	CHECK_EQ(load(BDEV_CFG("{\"method\":\"bdev_null_create\",\"params\":{\"name\":\"n\","
			       "\"num_blocks\":100,\"block_size\":4096}}"),
		      err, sizeof(err)),
		 0);
	params = json_pack("{s:s}", "name", "n");
	rpc_call(&req, "bdev_get_bdevs", params);
	REQUIRE(req.done && req.err_code == 0 && json_is_array(req.result));
	CHECK_EQ(json_array_size(req.result), 1);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(req.result, 0), "num_blocks")),
		 100);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(req.result, 0), "block_size")),
		 4096);
	json_decref(req.result);
	json_decref(params);
	memset(&req, 0, sizeof(req));
	rpc_call(&req, "rpc_get_methods", NULL);
	rpc_method_foreach(count_method, &n);
	CHECK(req.done && (int)json_array_size(req.result) == n);
	json_decref(req.result);
	CHECK_EQ(test_delete_bdev("n"), 0);
	uraid_runtime_stop();
}

/* Call method with params (a JSON text); the result or the error message. */
static json_t *
call(const char *method, const char *params_text, int *code, char *msg, size_t msg_len)
{
	struct rpc_request req = {0};
	json_t *params = params_text ? json_loads(params_text, 0, NULL) : NULL;

	rpc_call(&req, method, params);
	json_decref(params);
	CHECK(req.done);
	*code = req.err_code;
	snprintf(msg, msg_len, "%s", req.err_msg);
	return req.result;
}

static const char *
member_name(unsigned slot)
{
	static char name[64];
	int code;
	char msg[512];
	json_t *r = call("bdev_raid_get_bdevs", "{\"category\":\"all\"}", &code, msg, sizeof(msg));
	json_t *list = json_object_get(json_array_get(r, 0), "base_bdevs_list");

	snprintf(name, sizeof(name), "%s",
		 json_string_value(json_object_get(json_array_get(list, slot), "name")));
	json_decref(r);
	return name;
}

/* Spares (an array's and the pool's), replacement and removal through the methods. */
static void
test_raid_member_methods(void)
{
	char err[512], msg[512];
	json_t *r;
	int code;

	REQUIRE(start_manual(1) == 0);
	CHECK_EQ(load(BDEV_CFG("{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m0\","
			       "\"num_blocks\":4096,\"block_size\":512}},"
			       "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m1\","
			       "\"num_blocks\":4096,\"block_size\":512}},"
			       "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m2\","
			       "\"num_blocks\":4096,\"block_size\":512}},"
			       "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m3\","
			       "\"num_blocks\":4096,\"block_size\":512}},"
			       "{\"method\":\"bdev_malloc_create\",\"params\":{\"name\":\"m4\","
			       "\"num_blocks\":4096,\"block_size\":512}},"
			       "{\"method\":\"bdev_raid_create\",\"params\":{\"name\":\"r\","
			       "\"raid_level\":\"raid5\",\"strip_size_kb\":4,"
			       "\"base_bdevs\":[\"m0\",\"m1\",\"m2\"]}}"),
		      err, sizeof(err)),
		 0);
	/* The pool, and taking a spare back out of it. */
	r = call("bdev_raid_add_spare", "{\"base_bdev\":\"m3\"}", &code, msg, sizeof(msg));
	CHECK(code == 0 && json_is_true(r));
	json_decref(r);
	CHECK_EQ(uraid_spare_pool_count(), 1);
	r = call("bdev_raid_remove_base_bdev", "{\"name\":\"m3\"}", &code, msg, sizeof(msg));
	CHECK(code == 0 && json_is_true(r));
	json_decref(r);
	CHECK_EQ(uraid_spare_pool_count(), 0);
	call("bdev_raid_add_base_bdev", "{\"base_bdev\":\"m3\"}", &code, msg, sizeof(msg));
	CHECK(code != 0 && strstr(msg, "raid_bdev") != NULL);
	/* Replacement: m0 is copied to m4, which then holds slot 0. */
	call("bdev_raid_replace_base_bdev", "{\"name\":\"r\",\"base_bdev\":\"m9\"}", &code, msg,
	     sizeof(msg));
	CHECK(code != 0 && strstr(msg, "not a member") != NULL);
	r = call("bdev_raid_replace_base_bdev",
		 "{\"name\":\"r\",\"base_bdev\":\"m0\",\"new_base_bdev\":\"m4\"}", &code, msg,
		 sizeof(msg));
	CHECK(code == 0 && json_is_true(r));
	json_decref(r);
	uraid_runtime_poll_until_idle(100000);
	CHECK(strcmp(member_name(0), "m4") == 0);
	CHECK(uraid_bdev_claimed_by(uraid_bdev_get_by_name("m0")) == NULL);
	CHECK_EQ(test_delete_bdev("r"), 0);
	uraid_runtime_poll_until_idle(1000);
	for (int i = 0; i < 5; i++) {
		char name[8];

		snprintf(name, sizeof(name), "m%d", i);
		CHECK_EQ(test_delete_bdev(name), 0);
	}
	uraid_runtime_stop();
}

TEST_MAIN(TEST(test_spdk_config_loads), TEST(test_bad_configs), TEST(test_get_bdevs_and_methods),
	  TEST(test_raid_member_methods))
