// threads.cpp - a small C++ program with threads, strings, maps and exceptions: the same output under the preload.

#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// usage: threads: 4 threads fill a shared map with 4000 words, each throws
// and catches a few exceptions; prints a checksum. One vector is kept to
// the end on purpose (LEAK-CXX: live at exit, as valgrind sees it too).

int main()
{
    std::map<std::string, int> words;
    std::mutex m;
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < 1000; i++) {
                std::string w = "word" + std::to_string(t * 1000 + i);
                try {
                    if (i % 250 == 0) throw std::runtime_error(w);
                } catch (const std::exception &e) {
                    w += "!";
                }
                std::lock_guard<std::mutex> g(m);
                words[w] = i;
            }
        });
    }
    for (auto &t : ts) t.join();
    long sum = 0;
    for (const auto &kv : words) sum += kv.second + (long)kv.first.size();
    auto *kept = new std::vector<int>(100, 7); // LEAK-CXX
    std::cout << "words=" << words.size() << " sum=" << sum << " kept=" << kept->size() << std::endl;
    return 0;
}
