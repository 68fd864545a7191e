/* Initialised globals whose bytes bpfkit.btf.values.decode_value must read back (test_btf_values.py). */
enum color { RED = -1, GREEN = 1, BLUE = 7 };
struct inner { short s; unsigned char u; };
struct rec {
    int a;
    unsigned int b : 3;
    int c : 5;
    unsigned long long d;
    char name[8];
    struct inner in[2];
    enum color col;
    enum color unnamed;
    _Bool flag;
    double x;
    union { int i; unsigned char c4[4]; };
    int *p;
    float f;
    signed char sc;
};
struct rec rec_v = { -7, 5, -3, 1ULL << 40, "abc", {{-1, 200}, {2, 3}}, GREEN, (enum color)5, 1,
                     2.5, { .i = 0x41424344 }, 0, -0.5f, -100 };
unsigned int matrix[2][3] = { {1, 2, 3}, {4, 5, 6} };
const char greeting[] = "hello";
