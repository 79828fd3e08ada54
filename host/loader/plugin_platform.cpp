#include "loader/plugin_platform.hpp"

#ifdef _WIN32
#include <aclapi.h>
#include <windows.h>
#else
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace swh::loader::platform {

bool is_plugin_library(const std::filesystem::path &file) {
    const auto ext = file.extension().string();
    return ext == ".so" || ext == ".dylib" || ext == ".dll";
}

#ifdef _WIN32

namespace {

// Rights that let a principal change a file's code or swap it: write or
// append data, change its permissions or owner, delete it.
constexpr ACCESS_MASK kFileRights =
    FILE_WRITE_DATA | FILE_APPEND_DATA | WRITE_DAC | WRITE_OWNER | DELETE | GENERIC_WRITE | GENERIC_ALL;
// On a folder: add files or delete (so replace) entries, change its
// permissions or owner. FILE_ADD_SUBDIRECTORY alone, which Authenticated
// Users have on C:\, does not let anyone touch our file.
constexpr ACCESS_MASK kFolderRights =
    FILE_ADD_FILE | FILE_DELETE_CHILD | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL;

// The broad group an allow-ACE of `acl` grants any of `rights` to, or "".
std::string broad_writer(const ACL *acl, ACCESS_MASK rights) {
    const WELL_KNOWN_SID_TYPE groups[] = {WinWorldSid, WinAuthenticatedUserSid, WinBuiltinUsersSid};
    const char *names[] = {"Everyone", "Authenticated Users", "Users"};
    for (DWORD i = 0; acl && i < acl->AceCount; ++i) {
        void *raw = nullptr;
        if (!::GetAce(const_cast<ACL *>(acl), i, &raw)) continue;
        const auto *ace = static_cast<const ACCESS_ALLOWED_ACE *>(raw);
        // An inherit-only ACE is for the folder's children, not for itself.
        if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE || (ace->Header.AceFlags & INHERIT_ONLY_ACE) ||
            !(ace->Mask & rights))
            continue;
        for (size_t g = 0; g < 3; ++g) {
            BYTE sid[SECURITY_MAX_SID_SIZE];
            DWORD size = sizeof sid;
            if (::CreateWellKnownSid(groups[g], nullptr, sid, &size) &&
                ::EqualSid(const_cast<DWORD *>(&ace->SidStart), sid))
                return names[g];
        }
    }
    return "";
}

// "" or the group that holds any of `rights` on `path`; a DACL that cannot
// be read is left to LoadLibrary (the file may not exist).
std::string writable_by(const std::string &path, ACCESS_MASK rights) {
    PACL dacl = nullptr;
    PSECURITY_DESCRIPTOR sd = nullptr;
    if (::GetNamedSecurityInfoA(path.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr, nullptr,
                                &dacl, nullptr, &sd) != ERROR_SUCCESS)
        return "";
    // A NULL DACL grants everyone full access.
    std::string who = dacl ? broad_writer(dacl, rights) : "Everyone (no DACL)";
    ::LocalFree(sd);
    return who;
}

std::string last_error_text(DWORD code) {
    char *text = nullptr;
    const DWORD n = ::FormatMessageA(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
                                         FORMAT_MESSAGE_IGNORE_INSERTS,
                                     nullptr, code, 0, reinterpret_cast<char *>(&text), 0, nullptr);
    std::string out = n ? std::string(text, n) : "error " + std::to_string(code);
    ::LocalFree(text);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' '))
        out.pop_back();
    return out;
}

} // namespace

std::string unsafe_file_reason(const std::string &file) {
    if (auto who = writable_by(file, kFileRights); !who.empty())
        return file + ": refusing a plugin file that " + who + " may modify";
    const std::string dir = std::filesystem::path(file).parent_path().string();
    if (auto who = writable_by(dir.empty() ? "." : dir, kFolderRights); !who.empty())
        return file + ": refusing a plugin in a folder (" + dir + ") where " + who + " may replace files";
    return "";
}

std::string native_load_error(const std::string &file, const std::string &fallback) {
    if (HMODULE module = ::LoadLibraryA(file.c_str())) {
        ::FreeLibrary(module);
        return fallback;
    }
    return last_error_text(::GetLastError());
}

#else

std::string unsafe_file_reason(const std::string &file) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) return ""; // dlopen will report it
    if (st.st_mode & S_IWOTH) return file + ": refusing a world-writable plugin file";
    const uid_t me = ::geteuid();
    if (st.st_uid != me && st.st_uid != 0)
        return file + ": refusing a plugin file owned by uid " + std::to_string(st.st_uid) +
               ", not by the daemon's user (uid " + std::to_string(me) + ") or root";
    const std::string dir = std::filesystem::path(file).parent_path().string();
    struct stat dst {};
    // A sticky world-writable folder (like /tmp) still lets others add files
    // but not replace ours; a plain world-writable one lets anyone swap it.
    if (::stat(dir.empty() ? "." : dir.c_str(), &dst) == 0 && (dst.st_mode & S_IWOTH) &&
        !(dst.st_mode & S_ISVTX))
        return file + ": refusing a plugin in a world-writable folder (" + dir + ")";
    return "";
}

// Boost.DLL reports only an errno text ("Bad file descriptor"); the dynamic
// linker's own message says what is wrong, so ask it.
std::string native_load_error(const std::string &file, const std::string &fallback) {
    ::dlerror();
    if (void *handle = ::dlopen(file.c_str(), RTLD_LAZY | RTLD_LOCAL)) {
        ::dlclose(handle);
        return fallback;
    }
    const char *reason = ::dlerror();
    return reason ? reason : fallback;
}

#endif

} // namespace swh::loader::platform
