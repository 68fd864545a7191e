// Types for `btf dump file FILE format c` (tests/cli/test_btf_cli.py), besides what the
// kernel's own BTF has: layouts natural alignment does not explain (packed, a gap before
// an over-aligned member, tail padding), bitfields across storage units, a one-byte and
// a 64-bit enum, function pointers (no arguments, variadic, returning a pointer to an
// array), const/volatile pointers, arrays of arrays, anonymous and self-referencing
// structs and unions, and a struct used through a pointer before it is defined.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bk_later;

struct bk_packed {
	char c;
	int i;
	short s;
} __attribute__((packed));

struct bk_bits {
	unsigned int a : 3;
	unsigned int b : 7;
	long long l;
	unsigned char c : 1;
	int d : 20;
	int : 0;
	char e;
};

struct bk_gap {
	char c;
	long l __attribute__((aligned(16)));
	char tail;
};

enum bk_small { BK_S0, BK_S1 = 200 } __attribute__((packed));

enum bk_big { BK_B0 = 1, BK_B1 = 0x100000000ULL };

enum bk_neg { BK_N0 = -1, BK_N1 = 7 };

typedef int (*bk_fn)(void *ctx, const char *name, ...);
typedef void (*bk_none)(void);

struct bk_list {
	struct bk_list *next;
	struct bk_later *later;
	bk_fn handlers[2];
	bk_none none;
	volatile const int *vp;
	int *const cp;
	int (*(*ret_arr)(int))[4];
	char grid[3][5];
	union {
		int u;
		unsigned char bytes[4];
	};
	struct {
		int x;
		enum { BK_IN_A, BK_IN_B } kind;
	} inner;
	enum bk_small small;
	enum bk_big big;
	enum bk_neg neg;
	struct bk_packed packed;
	struct bk_bits bits;
	struct bk_gap gap;
};

struct bk_later {
	int v;
	struct bk_list *back;
};

struct bk_list bk_list_v;
struct bk_later bk_later_v;

SEC("socket")
int bk_ctypes(void *ctx)
{
	return bk_list_v.inner.x + bk_later_v.v;
}

char LICENSE[] SEC("license") = "GPL";
