// cxx_exceptions.cpp - C++ exceptions thrown and caught in 8 threads at once (the unwinder
// allocates and takes its own locks), carried across threads by std::async, thread_local
// objects whose destructors allocate.

#include <future>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

struct Scratch {
    std::vector<std::string> v;
    ~Scratch() { std::string s(100, 'x'); v.push_back(s); } // allocates at thread exit
};
thread_local Scratch scratch;

[[gnu::noinline]] static void deep(int n, int i)
{
    if (n == 0) throw std::runtime_error("failure " + std::to_string(i));
    deep(n - 1, i);
}

static long worker(int id)
{
    long caught = 0;
    for (int i = 0; i < 3000; i++) {
        try {
            deep(3 + i % 5, i);
        } catch (const std::exception &e) {
            scratch.v.push_back(e.what());
            if (scratch.v.size() > 50) scratch.v.clear();
            caught++;
        }
    }
    if (id == 3) throw std::logic_error("from thread 3");
    return caught;
}

int main()
{
    std::vector<std::future<long>> fs;
    for (int i = 0; i < 8; i++) fs.push_back(std::async(std::launch::async, worker, i));
    long total = 0;
    for (int i = 0; i < 8; i++) {
        try {
            total += fs[i].get();
        } catch (const std::logic_error &e) {
            std::cout << "thread " << i << " threw: " << e.what() << "\n";
        }
    }
    std::cout << "caught " << total << " exceptions\n";
    std::cerr << "done\n";
    return 0;
}
