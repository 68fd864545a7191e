/* Types whose C declarations bpfkit.btf.format must reproduce (see test_btf.py). */
typedef unsigned int u32;
typedef int (*handler_t)(int, void *);
struct point { int x, y; };
union either { long l; char c[8]; };
enum color { RED = -1, GREEN = 1 };
enum big { HUGE = 0x100000000ULL };
struct flags { unsigned int a : 3, b : 5; unsigned long long rest; struct { int inner; } nested; };
struct node;
struct list { struct node *head; };

char *const const_ptr = 0;
const char *ptr_to_const = 0;
int (*func_ptr)(int, void *) = 0;
char *arr_of_ptrs[4] = {0};
int (*ptr_to_arr)[4] = 0;
int matrix[3][5] = {{0}};
volatile u32 counter = 0;
handler_t handler = 0;
struct point origin = {0};
union either either_v = {0};
enum color color_v = RED;
enum big big_v = HUGE;
struct flags flags_v = {0};
struct list list_v = {0};
double ratio = 0.5;
unsigned char bytes[16] = {0};
_Bool yes = 1;
void (*callbacks[2])(void) = {0};
struct point *const *pp = 0;
int __attribute__((btf_decl_tag("tagged"))) tagged_v = 0;
int __attribute__((btf_type_tag("user"))) *user_ptr = 0;

char LICENSE[] __attribute__((section("license"))) = "GPL";
