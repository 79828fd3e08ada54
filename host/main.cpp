#include <cstdio>
int main() {
    std::puts("swarmhost " SWH_VERSION);
    return 0;
}
