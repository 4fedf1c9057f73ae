/* Stand-in for the Apple SDK header that ring's C code includes, so that
 * `cargo check --target aarch64-apple-darwin` can compile ring's build
 * script output on Linux (.ci/test.sh). Type-checking only: nothing built
 * with it is linked or shipped; real macOS builds use the SDK's header. */
#ifndef RCTOKEN_CI_TARGET_CONDITIONALS_H
#define RCTOKEN_CI_TARGET_CONDITIONALS_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_TV 0
#define TARGET_OS_SIMULATOR 0
#endif
