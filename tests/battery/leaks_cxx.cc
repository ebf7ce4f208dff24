// leaks_cxx.cc - a battery of C++ leak shapes through libstdc++, one per function, each marked "LEAK: name" (tests/test_stacks.sh).

#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

// As leaks_c.c: each leak_* function loses what one statement allocates,
// on the line marked with its shape's name. Containers are built in static
// storage that is never destroyed (placement new), so what leaks is only
// their heap memory, allocated on the marked line.

#define SHAPE __attribute__((noinline))

namespace battery {

static volatile char sink;

SHAPE static void touch(const void *p)
{
    if (p) sink = *static_cast<const volatile char *>(p);
}

struct Widget {
    int id;
    char payload[60];
};

struct Node {
    std::shared_ptr<Node> self; // a cycle: never freed
    char payload[40];
};

template <class T> struct Forever {
    alignas(T) unsigned char store[sizeof(T)];
    T *get() { return reinterpret_cast<T *>(store); }
};

SHAPE void leak_new()
{
    Widget *w = new Widget(); // LEAK: new
    touch(w);
}

SHAPE void leak_vector()
{
    static Forever<std::vector<int>> v;
    std::vector<int> *vec = new (v.store) std::vector<int>();
    for (int i = 0; i < 100; i++)
        vec->push_back(i); // LEAK: vector
    touch(vec->data());
}

SHAPE void leak_string()
{
    static Forever<std::string> s;
    std::string *str = new (s.store) std::string(80, 'x'); // LEAK: string
    touch(str->data());
}

SHAPE void leak_map()
{
    static Forever<std::map<int, long>> m;
    std::map<int, long> *map = new (m.store) std::map<int, long>();
    map->emplace(7, 7L); // LEAK: map
    touch(map);
}

SHAPE void leak_make_shared()
{
    std::shared_ptr<Node> n = std::make_shared<Node>(); // LEAK: make_shared
    n->self = n;
    touch(n.get());
}

} // namespace battery

int main()
{
    battery::leak_new();
    battery::leak_vector();
    battery::leak_string();
    battery::leak_map();
    battery::leak_make_shared();
    return 0;
}
