// threads.cpp - a small C++ program with threads, strings, maps and exceptions: the same output under the preload.

#include <iostream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// usage: threads [N]: N threads (default 4, 0: main alone) fill a shared map
// with 1000 words each, throwing and catching a few exceptions; prints a
// checksum. One vector is kept to the end on purpose (LEAK-CXX: live at
// exit, as valgrind sees it too).

int main(int argc, char **argv)
{
    int n = argc > 1 ? std::stoi(argv[1]) : 4;
    std::map<std::string, int> words;
    std::mutex m;
    std::vector<std::thread> ts;
    auto fill = [&](int t) {
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
    };
    for (int t = 0; t < n; t++) ts.emplace_back(fill, t);
    for (auto &t : ts) t.join();
    if (n == 0) fill(0);
    long sum = 0;
    for (const auto &kv : words) sum += kv.second + (long)kv.first.size();
    auto *kept = new std::vector<int>(100, 7); // LEAK-CXX
    std::cout << "words=" << words.size() << " sum=" << sum << " kept=" << kept->size() << std::endl;
    return 0;
}
