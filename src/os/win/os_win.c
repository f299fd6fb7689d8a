/* The OS contract (src/os/os.h) on Windows: file mappings (sections),
 * named semaphores for wait points, named mutexes for robust locks, process
 * handles for liveness. Included by src/os/os.c. Only the Windows API
 * (kernel32, advapi32, and ntdll entry points looked up at run time) is used;
 * no C run-time beyond the standard library, no pthreads. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0602 /* Windows 8: GetSystemTimePreciseAsFileTime */
#endif

#include "../os.h"

#include <windows.h>

#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winioctl.h>

#include "../../error.h"

/* ---------------------------------------------------------------------- */
/* Errors                                                                 */

static int err_from_win(DWORD e) {
  switch (e) {
  case ERROR_SUCCESS:
    return 0;
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
  case ERROR_INVALID_DRIVE:
    return FERRY_ENOENT;
  case ERROR_ALREADY_EXISTS:
  case ERROR_FILE_EXISTS:
    return FERRY_EEXIST;
  case ERROR_ACCESS_DENIED:
  case ERROR_SHARING_VIOLATION:
  case ERROR_LOCK_VIOLATION:
  case ERROR_WRITE_PROTECT:
  case ERROR_PRIVILEGE_NOT_HELD:
    return FERRY_EACCES;
  case ERROR_DISK_FULL:
  case ERROR_HANDLE_DISK_FULL:
    return FERRY_ENOSPC;
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
  case ERROR_NO_SYSTEM_RESOURCES:
  case ERROR_COMMITMENT_LIMIT:
  case ERROR_WORKING_SET_QUOTA:
  case ERROR_TOO_MANY_OPEN_FILES:
    return FERRY_ENOMEM;
  case ERROR_INVALID_PARAMETER:
  case ERROR_INVALID_NAME:
  case ERROR_BAD_PATHNAME:
  case ERROR_FILENAME_EXCED_RANGE:
  case ERROR_INVALID_HANDLE: /* also: the name is another kind of object */
  case ERROR_DIRECTORY:
    return FERRY_EINVAL;
  case ERROR_MAPPED_ALIGNMENT:
    return FERRY_ETOOBIG;
  case ERROR_FILE_INVALID:
    return FERRY_ESIZE;
  case ERROR_TIMEOUT:
  case WAIT_TIMEOUT:
    return FERRY_ETIMEDOUT;
  case ERROR_NOT_SUPPORTED:
  case ERROR_CALL_NOT_IMPLEMENTED:
    return FERRY_ENOTSUP;
  default:
    return FERRY_EIO;
  }
}

/* "The system cannot find the file specified (error 2)". */
static const char *win_msg(DWORD e, char *buf, size_t cap) {
  DWORD n = FormatMessageA(
      FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e,
      MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), buf, (DWORD)cap, NULL);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                   buf[n - 1] == ' ' || buf[n - 1] == '.'))
    buf[--n] = '\0';
  if (n == 0)
    snprintf(buf, cap, "Windows error %lu", (unsigned long)e);
  else
    snprintf(buf + n, cap - n, " (error %lu)", (unsigned long)e);
  return buf;
}

/* Translates error E and sets the detail message "WHAT: message". */
static int os_err(DWORD e, const char *what) {
  char m[256];
  return ferry__err(err_from_win(e), "%s: %s", what, win_msg(e, m, sizeof m));
}

/* The clear message for ERROR_INVALID_HANDLE from a create/open by name:
 * Windows has one namespace for sections, events, mutexes and semaphores. */
static int other_kind_err(const char *osname, const char *want) {
  return ferry__err(FERRY_EINVAL,
                    "%s is taken by a kernel object that is not a %s (a "
                    "mutex, event, semaphore or timer of another program)",
                    osname, want);
}

/* ---------------------------------------------------------------------- */
/* Capabilities                                                           */

static ferry_os_caps caps;
static LARGE_INTEGER qpc_freq; /* QueryPerformanceCounter ticks per second */
static INIT_ONCE caps_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK caps_init(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  SYSTEM_INFO si;
  (void)once;
  (void)param;
  (void)ctx;
  GetSystemInfo(&si);
  caps.page_size = si.dwPageSize ? si.dwPageSize : 4096u;
  caps.alloc_granularity =
      si.dwAllocationGranularity ? si.dwAllocationGranularity : 65536u;
  caps.huge_page_size = (uint64_t)GetLargePageMinimum();
  QueryPerformanceFrequency(&qpc_freq);
  return TRUE;
}

const ferry_os_caps *ferry_os_caps_get(void) {
  InitOnceExecuteOnce(&caps_once, caps_init, NULL, NULL);
  return &caps;
}

/* ---------------------------------------------------------------------- */
/* ntdll entry points (documented in the WDK, looked up at run time)       */

typedef LONG(NTAPI *nt_query_section_fn)(HANDLE, int, PVOID, SIZE_T, PSIZE_T);
typedef LONG(NTAPI *nt_query_sysinfo_fn)(int, PVOID, ULONG, PULONG);
typedef LONG(NTAPI *nt_query_object_fn)(HANDLE, int, PVOID, ULONG, PULONG);

struct nt_unicode_string {
  USHORT Length;
  USHORT MaximumLength;
  PWSTR Buffer;
};
struct nt_object_attributes {
  ULONG Length;
  HANDLE RootDirectory;
  struct nt_unicode_string *ObjectName;
  ULONG Attributes;
  PVOID SecurityDescriptor;
  PVOID SecurityQualityOfService;
};
struct nt_dir_info {
  struct nt_unicode_string Name;
  struct nt_unicode_string TypeName;
};
typedef LONG(NTAPI *nt_open_dir_fn)(PHANDLE, ACCESS_MASK,
                                    struct nt_object_attributes *);
typedef LONG(NTAPI *nt_query_dir_fn)(HANDLE, PVOID, ULONG, BOOLEAN, BOOLEAN,
                                     PULONG, PULONG);

static FARPROC nt_proc(const char *name) {
  HMODULE m = GetModuleHandleA("ntdll.dll");
  return m ? GetProcAddress(m, name) : NULL;
}

/* ---------------------------------------------------------------------- */
/* Names                                                                  */

int ferry_os_object_name(int kind, const char *name, int global, char *buf,
                         size_t cap) {
  const char *ns = global ? "Global\\" : "Local\\";
  const char *prefix = kind == FERRY_OS_NAME_SYNC ? "ferry-sync." : "ferry.";
  int n = snprintf(buf, cap, "%s%s%s", ns, prefix, name);
  if (n < 0 || (size_t)n >= cap)
    return ferry__err(FERRY_EINVAL, "OS name for '%s' is too long", name);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Security descriptors from permission bits                              */

enum sd_kind { SD_SECTION, SD_FILE, SD_SYNC };

/* "S-1-5-21-..." of the token's user (TokenUser) or primary group. */
static int token_sid(TOKEN_INFORMATION_CLASS cls, char *buf, size_t cap) {
  HANDLE tok;
  union {
    TOKEN_USER user;
    TOKEN_PRIMARY_GROUP group;
    unsigned char raw[512];
  } info;
  DWORD n = 0;
  PSID sid;
  LPSTR s = NULL;
  int ok = 0;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return 0;
  if (GetTokenInformation(tok, cls, &info, sizeof info, &n)) {
    sid = cls == TokenUser ? info.user.User.Sid : info.group.PrimaryGroup;
    if (ConvertSidToStringSidA(sid, &s)) {
      ok = snprintf(buf, cap, "%s", s) < (int)cap;
      LocalFree(s);
    }
  }
  CloseHandle(tok);
  return ok;
}

/* Access rights that permission bits R and W (of one class) give. */
static DWORD sd_mask(enum sd_kind kind, int r, int w, int owner) {
  DWORD m = 0;
  switch (kind) {
  case SD_SECTION:
    if (r)
      m |= SECTION_QUERY | SECTION_MAP_READ | READ_CONTROL | SYNCHRONIZE;
    if (w)
      m |= SECTION_MAP_WRITE;
    if (owner)
      m |= READ_CONTROL | WRITE_DAC | DELETE;
    break;
  case SD_FILE:
    if (r)
      m |= FILE_GENERIC_READ;
    if (w)
      m |= FILE_GENERIC_WRITE;
    if (owner)
      m |= READ_CONTROL | WRITE_DAC | DELETE | FILE_READ_ATTRIBUTES |
           FILE_WRITE_ATTRIBUTES;
    break;
  case SD_SYNC: /* whoever may use the segment may wait and wake */
    if (r || w)
      m |= GENERIC_ALL;
    break;
  }
  return m;
}

/* A self-relative security descriptor with a protected DACL that gives the
 * process's user, its primary group and Everyone what MODE's owner, group
 * and other bits allow (0600: the owner alone). LocalFree the result. */
static int sd_from_mode(uint32_t mode, enum sd_kind kind,
                        PSECURITY_DESCRIPTOR *out) {
  char user[192], group[192], sddl[1024];
  static const char *const who[3] = {NULL, NULL, "WD"};
  int i, n;
  if (!token_sid(TokenUser, user, sizeof user))
    return os_err(GetLastError(), "reading this process's user SID");
  if (!token_sid(TokenPrimaryGroup, group, sizeof group))
    snprintf(group, sizeof group, "%s", user);
  n = snprintf(sddl, sizeof sddl, "D:P");
  for (i = 0; i < 3; i++) {
    unsigned bits = (mode >> (6 - 3 * i)) & 7u;
    DWORD m = sd_mask(kind, (bits & 4) != 0, (bits & 2) != 0, i == 0);
    const char *sid = i == 0 ? user : i == 1 ? group : who[i];
    if (m == 0 || (i == 0 && bits == 0 && kind == SD_SYNC))
      continue;
    n += snprintf(sddl + n, sizeof sddl - (size_t)n, "(A;;0x%08lx;;;%s)",
                  (unsigned long)m, sid);
  }
  if (n >= (int)sizeof sddl)
    return ferry__err(FERRY_EINVAL, "security descriptor too long");
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(
          sddl, SDDL_REVISION_1, out, NULL))
    return os_err(GetLastError(), "building the security descriptor");
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

#define HI32(x) ((DWORD)((uint64_t)(x) >> 32))
#define LO32(x) ((DWORD)((uint64_t)(x)&0xffffffffu))

static void shm_init(ferry_os_shm *o, HANDLE h, HANDLE file, int writable) {
  o->h = (ferry_os_handle)h;
  o->file = file ? (ferry_os_handle)file : FERRY_OS_NO_HANDLE;
  o->writable = writable;
  o->huge = 0;
}

static HANDLE H(ferry_os_handle h) { return (HANDLE)h; }

/* "16 GiB of memory and paging file are free, 32 GiB needed". */
static int nomem_err(const char *what, uint64_t size, DWORD e) {
  MEMORYSTATUSEX ms;
  char need[32], have[32], m[256];
  ferry__fmt_bytes(size, need, sizeof need);
  ms.dwLength = sizeof ms;
  if (GlobalMemoryStatusEx(&ms))
    return ferry__err(FERRY_ENOSPC,
                      "%s: %s of commit (memory and paging file) free, %s "
                      "needed: %s",
                      what,
                      ferry__fmt_bytes(ms.ullAvailPageFile, have, sizeof have),
                      need, win_msg(e, m, sizeof m));
  return ferry__err(FERRY_ENOSPC, "%s: cannot reserve %s: %s", what, need,
                    win_msg(e, m, sizeof m));
}

static int is_nomem(DWORD e) {
  return e == ERROR_NOT_ENOUGH_MEMORY || e == ERROR_OUTOFMEMORY ||
         e == ERROR_NO_SYSTEM_RESOURCES || e == ERROR_COMMITMENT_LIMIT ||
         e == ERROR_DISK_FULL;
}

/* Creates a pagefile-backed section of SIZE bytes named OSNAME (NULL:
 * unnamed) with security descriptor SD. */
static int section_create(ferry_os_shm *o, const char *osname, uint64_t size,
                          PSECURITY_DESCRIPTOR sd, unsigned flags) {
  SECURITY_ATTRIBUTES sa;
  DWORD prot = PAGE_READWRITE | SEC_COMMIT, e;
  HANDLE h;
  const char *what = osname ? osname : "anonymous memory";
  sa.nLength = sizeof sa;
  sa.lpSecurityDescriptor = sd;
  sa.bInheritHandle = (flags & FERRY_OS_INHERIT) ? TRUE : FALSE;
  if (flags & FERRY_OS_HUGE)
    prot |= SEC_LARGE_PAGES;
  if (sizeof(SIZE_T) < 8 && size > (uint64_t)SIZE_MAX)
    return ferry__err(FERRY_ETOOBIG,
                      "%s: %llu bytes cannot be committed by "
                      "a 32-bit process",
                      what, (unsigned long long)size);
  SetLastError(0);
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, &sa, prot, HI32(size),
                         LO32(size), osname);
  e = GetLastError();
  if (!h) {
    if (e == ERROR_INVALID_HANDLE && osname)
      return other_kind_err(osname, "file mapping");
    if (e == ERROR_ALREADY_EXISTS)
      return ferry__err(FERRY_EEXIST, "%s already exists", what);
    if (e == ERROR_ACCESS_DENIED && osname)
      return ferry__err(FERRY_EEXIST,
                        "%s already exists and belongs to another user", what);
    if ((flags & FERRY_OS_HUGE) &&
        (e == ERROR_PRIVILEGE_NOT_HELD || e == ERROR_INVALID_PARAMETER ||
         e == ERROR_NOT_SUPPORTED))
      return ferry__err(FERRY_ENOTSUP,
                        "%s: large pages need the 'Lock pages in memory' "
                        "privilege (SeLockMemoryPrivilege) and a size that is "
                        "a multiple of %llu bytes (error %lu)",
                        what, (unsigned long long)caps.huge_page_size,
                        (unsigned long)e);
    if (is_nomem(e))
      return nomem_err(what, size, e);
    return os_err(e, what);
  }
  if (e == ERROR_ALREADY_EXISTS) { /* opened someone else's section */
    CloseHandle(h);
    return ferry__err(FERRY_EEXIST, "%s already exists", what);
  }
  shm_init(o, h, NULL, 1);
  o->huge = (flags & FERRY_OS_HUGE) ? 1 : 0;
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Named objects                                                          */

int ferry_os_shm_create(ferry_os_shm *o, const char *osname, uint64_t size,
                        uint32_t mode, unsigned flags) {
  PSECURITY_DESCRIPTOR sd = NULL;
  int rc = sd_from_mode(mode, SD_SECTION, &sd);
  if (rc != 0)
    return rc;
  rc = section_create(o, osname, size, sd, flags & ~FERRY_OS_INHERIT);
  LocalFree(sd);
  return rc;
}

int ferry_os_shm_open(ferry_os_shm *o, const char *osname, int writable) {
  /* SECTION_QUERY: ferry_os_shm_stat asks the section for its size. */
  HANDLE h = OpenFileMappingA(SECTION_QUERY | FILE_MAP_READ |
                                  (writable ? FILE_MAP_WRITE : 0),
                              FALSE, osname);
  DWORD e;
  if (!h) {
    e = GetLastError();
    if (e == ERROR_FILE_NOT_FOUND)
      return ferry__err(FERRY_ENOENT, "%s does not exist", osname);
    if (e == ERROR_INVALID_HANDLE)
      return other_kind_err(osname, "file mapping");
    if (e == ERROR_ACCESS_DENIED)
      return ferry__err(FERRY_EACCES,
                        "cannot open %s %s: access denied (its security "
                        "descriptor does not allow this user%s)",
                        osname, writable ? "read-write" : "read-only",
                        writable ? "; try read-only" : "");
    return os_err(e, osname);
  }
  shm_init(o, h, NULL, writable);
  return 0;
}

int ferry_os_shm_unlink(const char *osname) {
  /* A section has no name to remove: it goes when its last handle closes. */
  HANDLE h = OpenFileMappingA(FILE_MAP_READ, FALSE, osname);
  DWORD e;
  if (h) {
    CloseHandle(h);
    return 0;
  }
  e = GetLastError();
  if (e == ERROR_FILE_NOT_FOUND)
    return ferry__err(FERRY_ENOENT, "%s does not exist", osname);
  if (e == ERROR_ACCESS_DENIED)
    return 0; /* it exists; this user may not read it */
  if (e == ERROR_INVALID_HANDLE)
    return other_kind_err(osname, "file mapping");
  return os_err(e, osname);
}

/* The object directory behind Local\ : \Sessions\N\BaseNamedObjects, or
 * \BaseNamedObjects in session 0. */
static void local_dir(WCHAR *buf, size_t cap) {
  DWORD session = 0;
  if (!ProcessIdToSessionId(GetCurrentProcessId(), &session))
    session = 0;
  if (session == 0)
    _snwprintf(buf, cap, L"\\BaseNamedObjects");
  else
    _snwprintf(buf, cap, L"\\Sessions\\%lu\\BaseNamedObjects",
               (unsigned long)session);
  buf[cap - 1] = 0;
}

int ferry_os_shm_list(int (*cb)(const char *name, void *ctx), void *ctx) {
  /* Windows documents no API that lists a namespace; the object manager's
   * NtOpenDirectoryObject/NtQueryDirectoryObject (WinObj uses them) do. */
  nt_open_dir_fn open_dir =
      (nt_open_dir_fn)(void (*)(void))nt_proc("NtOpenDirectoryObject");
  nt_query_dir_fn query_dir =
      (nt_query_dir_fn)(void (*)(void))nt_proc("NtQueryDirectoryObject");
  struct nt_unicode_string us;
  struct nt_object_attributes oa;
  WCHAR path[128];
  HANDLE dir;
  ULONG ctxi = 0, len;
  LONG st;
  union {
    struct nt_dir_info info;
    unsigned char raw[4096];
  } buf;
  int rc = 0;
  if (!open_dir || !query_dir)
    return ferry__err(FERRY_ENOTSUP, "this Windows cannot list named objects "
                                     "(no NtQueryDirectoryObject)");
  local_dir(path, sizeof path / sizeof path[0]);
  us.Buffer = path;
  us.Length = (USHORT)(wcslen(path) * sizeof(WCHAR));
  us.MaximumLength = us.Length;
  memset(&oa, 0, sizeof oa);
  oa.Length = sizeof oa;
  oa.ObjectName = &us;
  oa.Attributes = 0x40; /* OBJ_CASE_INSENSITIVE */
  st = open_dir(&dir, 0x0001 /* DIRECTORY_QUERY */, &oa);
  if (st < 0)
    return ferry__err(FERRY_EIO,
                      "cannot open the object directory %ls: "
                      "NTSTATUS 0x%08lx",
                      path, (unsigned long)st);
  for (;;) {
    char name[FERRY_NAME_MAX + 16];
    int k, n, ascii = 1;
    st = query_dir(dir, &buf, sizeof buf, TRUE, ctxi == 0, &ctxi, &len);
    if (st < 0 || (ULONG)st == 0x8000001aul /* STATUS_NO_MORE_ENTRIES */)
      break;
    if (wcsncmp(buf.info.TypeName.Buffer, L"Section",
                buf.info.TypeName.Length / sizeof(WCHAR)) != 0)
      continue;
    n = buf.info.Name.Length / (int)sizeof(WCHAR);
    if (n <= 6 || n >= (int)sizeof name)
      continue;
    for (k = 0; k < n; k++) {
      WCHAR c = buf.info.Name.Buffer[k];
      if (c == 0 || c > 126)
        ascii = 0;
      name[k] = (char)c;
    }
    name[n] = '\0';
    if (!ascii || strncmp(name, "ferry.", 6) != 0)
      continue;
    rc = cb(name + 6, ctx);
    if (rc != 0)
      break;
  }
  CloseHandle(dir);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                  */

static int file_err(DWORD e, const char *path, int writable, int creating) {
  char m[256];
  if (e == ERROR_FILE_NOT_FOUND)
    return ferry__err(FERRY_ENOENT, "%s does not exist", path);
  if (e == ERROR_PATH_NOT_FOUND)
    return ferry__err(FERRY_ENOENT, "%s: no such directory", path);
  if (e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS)
    return ferry__err(FERRY_EEXIST, "%s already exists", path);
  if (e == ERROR_ACCESS_DENIED || e == ERROR_WRITE_PROTECT) {
    DWORD a = GetFileAttributesA(path);
    if (!creating && writable && a != INVALID_FILE_ATTRIBUTES &&
        (a & FILE_ATTRIBUTE_READONLY))
      return ferry__err(FERRY_EACCES,
                        "%s is read-only (read-only attribute): open it "
                        "read-only (FERRY_RDONLY / --readonly)",
                        path);
    if (!creating && writable && e == ERROR_WRITE_PROTECT)
      return ferry__err(FERRY_EACCES,
                        "%s is on write-protected media: open it read-only "
                        "(FERRY_RDONLY / --readonly)",
                        path);
    return ferry__err(FERRY_EACCES, "cannot %s %s%s: %s",
                      creating ? "create" : "open", path,
                      creating ? "" : (writable ? " read-write" : " read-only"),
                      win_msg(e, m, sizeof m));
  }
  if (e == ERROR_SHARING_VIOLATION)
    return ferry__err(FERRY_EBUSY, "%s is locked by another program: %s", path,
                      win_msg(e, m, sizeof m));
  return os_err(e, path);
}

/* Makes the section over file F (size taken from the file). */
static int file_section(ferry_os_shm *o, HANDLE f, const char *path,
                        int writable) {
  HANDLE h = CreateFileMappingA(
      f, NULL, writable ? PAGE_READWRITE : PAGE_READONLY, 0, 0, NULL);
  if (!h) {
    DWORD e = GetLastError();
    if (e == ERROR_FILE_INVALID) {
      /* Empty (Windows cannot make a section of 0 bytes): a creator
       * between CreateFile and SetEndOfFile, as on POSIX. No section yet:
       * ferry_os_shm_stat reports size 0, so the opener waits, and makes
       * the section once the file has a size. */
      shm_init(o, NULL, f, writable);
      o->h = FERRY_OS_NO_HANDLE;
      return 0;
    }
    if (e == ERROR_ACCESS_DENIED)
      return file_err(e, path, writable, 0);
    return os_err(e, path);
  }
  shm_init(o, h, f, writable);
  return 0;
}

int ferry_os_file_create(ferry_os_shm *o, const char *path, uint64_t size,
                         uint32_t mode, unsigned flags) {
  PSECURITY_DESCRIPTOR sd = NULL;
  SECURITY_ATTRIBUTES sa;
  LARGE_INTEGER li;
  HANDLE f;
  DWORD e, junk;
  int rc;
  if (flags & FERRY_OS_HUGE)
    return ferry__err(FERRY_ENOTSUP,
                      "%s: huge pages are not available for file-backed "
                      "segments; use a named or anonymous segment",
                      path);
  rc = sd_from_mode(mode, SD_FILE, &sd);
  if (rc != 0)
    return rc;
  sa.nLength = sizeof sa;
  sa.lpSecurityDescriptor = sd;
  sa.bInheritHandle = FALSE;
  f = CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
                  FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
                  CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
  e = GetLastError();
  LocalFree(sd);
  if (f == INVALID_HANDLE_VALUE)
    return file_err(e, path, 1, 1);
  if (flags & FERRY_OS_SPARSE)
    (void)DeviceIoControl(f, FSCTL_SET_SPARSE, NULL, 0, NULL, 0, &junk, NULL);
  li.QuadPart = (LONGLONG)size;
  if ((int64_t)size < 0 || !SetFilePointerEx(f, li, NULL, FILE_BEGIN) ||
      !SetEndOfFile(f)) {
    e = GetLastError();
    if (e == ERROR_DISK_FULL || e == ERROR_HANDLE_DISK_FULL) {
      ULARGE_INTEGER avail;
      char need[32], have[32];
      ferry__fmt_bytes(size, need, sizeof need);
      if (GetDiskFreeSpaceExA(path, &avail, NULL, NULL))
        rc = ferry__err(FERRY_ENOSPC, "%s: %s free, %s needed", path,
                        ferry__fmt_bytes(avail.QuadPart, have, sizeof have),
                        need);
      else
        rc = ferry__err(FERRY_ENOSPC, "%s: not enough disk space for %s", path,
                        need);
    } else {
      rc = os_err(e, path);
    }
    goto fail;
  }
  rc = file_section(o, f, path, 1);
  if (rc != 0)
    goto fail;
  if (!(mode & 0200)) /* the owner may not write: so say the attributes */
    (void)SetFileAttributesA(path, FILE_ATTRIBUTE_READONLY);
  return 0;
fail:
  CloseHandle(f);
  DeleteFileA(path);
  return rc;
}

int ferry_os_file_open(ferry_os_shm *o, const char *path, int writable) {
  HANDLE f = CreateFileA(path, GENERIC_READ | (writable ? GENERIC_WRITE : 0),
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  BY_HANDLE_FILE_INFORMATION fi;
  int rc;
  if (f == INVALID_HANDLE_VALUE) {
    DWORD e = GetLastError(), a = GetFileAttributesA(path);
    /* CreateFile opens no directory (without FILE_FLAG_BACKUP_SEMANTICS):
     * access denied */
    if (e == ERROR_ACCESS_DENIED && a != INVALID_FILE_ATTRIBUTES &&
        (a & FILE_ATTRIBUTE_DIRECTORY))
      return ferry__err(FERRY_EINVAL, "%s is not a regular file", path);
    return file_err(e, path, writable, 0);
  }
  if (!GetFileInformationByHandle(f, &fi) ||
      (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
    CloseHandle(f);
    return ferry__err(FERRY_EINVAL, "%s is not a regular file", path);
  }
  rc = file_section(o, f, path, writable);
  if (rc != 0)
    CloseHandle(f);
  return rc;
}

int ferry_os_file_unlink(const char *path) {
  if (!DeleteFileA(path)) {
    DWORD e = GetLastError();
    if (e == ERROR_ACCESS_DENIED &&
        (GetFileAttributesA(path) & FILE_ATTRIBUTE_READONLY) &&
        GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES) {
      /* rm of a read-only file, as unlink(2) allows in a writable dir */
      DWORD a = GetFileAttributesA(path);
      if (SetFileAttributesA(path, a & ~(DWORD)FILE_ATTRIBUTE_READONLY) &&
          DeleteFileA(path))
        return 0;
      e = GetLastError();
    }
    return file_err(e, path, 1, 0);
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Anonymous objects                                                      */

int ferry_os_anon_create(ferry_os_shm *o, uint64_t size, unsigned flags) {
  /* Only this user may open it by handle duplication from outside. */
  PSECURITY_DESCRIPTOR sd = NULL;
  int rc = sd_from_mode(0600, SD_SECTION, &sd);
  if (rc != 0)
    return rc;
  rc = section_create(o, NULL, size, sd, flags);
  LocalFree(sd);
  return rc;
}

int ferry_os_handle_open(ferry_os_shm *o, ferry_os_handle h, int writable) {
  HANDLE dup = NULL;
  DWORD want = SECTION_QUERY | FILE_MAP_READ | (writable ? FILE_MAP_WRITE : 0);
  nt_query_object_fn query =
      (nt_query_object_fn)(void (*)(void))nt_proc("NtQueryObject");
  struct { /* OBJECT_BASIC_INFORMATION: NtQueryObject wants its exact size */
    ULONG attributes;
    ACCESS_MASK granted;
    ULONG counts[10];
    LARGE_INTEGER created;
  } obi;
  if (h == FERRY_OS_NO_HANDLE || h == 0)
    return ferry__err(FERRY_EINVAL, "handle %lld is not a handle",
                      (long long)h);
  /* DuplicateHandle grants any right the object's security descriptor
   * allows, also rights H itself lacks: a read-only handle must not become
   * a writable one. Check what H grants. */
  if (query && query(H(h), 0 /* ObjectBasicInformation */, &obi, sizeof obi,
                     NULL) >= 0) {
    DWORD need = FILE_MAP_READ | (writable ? FILE_MAP_WRITE : 0);
    if ((obi.granted & need) != need)
      return ferry__err(FERRY_EACCES, "handle %lld does not allow %s access%s",
                        (long long)h, writable ? "read-write" : "read",
                        writable ? ": open the segment read-only" : "");
  }
  if (!DuplicateHandle(GetCurrentProcess(), H(h), GetCurrentProcess(), &dup,
                       want, FALSE, 0)) {
    DWORD e = GetLastError();
    if (e == ERROR_ACCESS_DENIED)
      return ferry__err(FERRY_EACCES,
                        "handle %lld does not allow %s access: open the "
                        "segment read-only",
                        (long long)h, writable ? "read-write" : "read");
    if (e == ERROR_INVALID_HANDLE)
      return ferry__err(FERRY_EINVAL, "handle %lld is not an open handle",
                        (long long)h);
    return os_err(e, "DuplicateHandle");
  }
  shm_init(o, dup, NULL, writable);
  return 0;
}

int ferry_os_shm_stat(const ferry_os_shm *o, uint64_t *size, int *removed) {
  *removed = 0;
  if (o->file != FERRY_OS_NO_HANDLE) {
    LARGE_INTEGER li;
    if (!GetFileSizeEx(H(o->file), &li))
      return os_err(GetLastError(), "GetFileSizeEx");
    *size = (uint64_t)li.QuadPart;
    if (*size > 0 && o->h == FERRY_OS_NO_HANDLE) {
      /* opened while empty (file_section): the section, now that the file
       * has a size. O is the caller's own, writable object. */
      HANDLE h = CreateFileMappingA(
          H(o->file), NULL, o->writable ? PAGE_READWRITE : PAGE_READONLY, 0, 0,
          NULL);
      if (!h)
        return os_err(GetLastError(), "CreateFileMapping");
      ((ferry_os_shm *)o)->h = (ferry_os_handle)h;
    }
    return 0;
  } else {
    /* NtQuerySection(SectionBasicInformation): the section's size. */
    struct {
      PVOID base;
      ULONG attributes;
      LARGE_INTEGER size;
    } sbi;
    nt_query_section_fn q =
        (nt_query_section_fn)(void (*)(void))nt_proc("NtQuerySection");
    LONG st;
    if (!q)
      return ferry__err(FERRY_ENOTSUP, "NtQuerySection is missing");
    memset(&sbi, 0, sizeof sbi);
    st = q(H(o->h), 0 /* SectionBasicInformation */, &sbi, sizeof sbi, NULL);
    if (st < 0)
      return ferry__err(FERRY_EIO, "NtQuerySection: NTSTATUS 0x%08lx",
                        (unsigned long)st);
    *size = (uint64_t)sbi.size.QuadPart;
    return 0;
  }
}

void ferry_os_shm_close(ferry_os_shm *o) {
  if (o->h != FERRY_OS_NO_HANDLE && o->h != 0)
    CloseHandle(H(o->h));
  if (o->file != FERRY_OS_NO_HANDLE && o->file != 0)
    CloseHandle(H(o->file));
  o->h = FERRY_OS_NO_HANDLE;
  o->file = FERRY_OS_NO_HANDLE;
}

/* ---------------------------------------------------------------------- */
/* Mapping                                                                */

int ferry_os_map(const ferry_os_shm *o, uint64_t offset, uint64_t len,
                 unsigned flags, void **addr) {
  DWORD access = (flags & FERRY_OS_MAP_WRITE) ? FILE_MAP_WRITE : FILE_MAP_READ;
  void *p;
  const ferry_os_caps *c = ferry_os_caps_get();
  if (len == 0 || len > (uint64_t)SIZE_MAX)
    return ferry__err(FERRY_ETOOBIG,
                      "cannot map %llu bytes at offset %llu in a %u-bit "
                      "process; map it in windows (ferry_window)",
                      (unsigned long long)len, (unsigned long long)offset,
                      (unsigned)(sizeof(void *) * 8));
  if (offset % c->alloc_granularity != 0)
    return ferry__err(FERRY_EINVAL,
                      "view offset %llu is not a multiple of the allocation "
                      "granularity (%llu)",
                      (unsigned long long)offset,
                      (unsigned long long)c->alloc_granularity);
  if (o->h == FERRY_OS_NO_HANDLE && o->file != FERRY_OS_NO_HANDLE) {
    /* A file that was empty when opened: a section over what it holds now
     * (the view keeps it alive). */
    HANDLE sec = CreateFileMappingA(
        H(o->file), NULL,
        (flags & FERRY_OS_MAP_WRITE) ? PAGE_READWRITE : PAGE_READONLY, 0, 0,
        NULL);
    if (!sec) {
      DWORD e = GetLastError();
      if (e == ERROR_FILE_INVALID)
        return ferry__err(FERRY_ESIZE, "the file is empty: nothing to map");
      return os_err(e, "CreateFileMapping");
    }
    DWORD saved;
    p = MapViewOfFile(sec, access, HI32(offset), LO32(offset), (SIZE_T)len);
    saved = p ? 0 : GetLastError();
    CloseHandle(sec);
    SetLastError(saved);
  } else {
    p = MapViewOfFile(H(o->h), access, HI32(offset), LO32(offset), (SIZE_T)len);
  }
  if (!p) {
    DWORD e = GetLastError();
    char m[256];
    if (e == ERROR_NOT_ENOUGH_MEMORY || e == ERROR_MAPPED_ALIGNMENT ||
        e == ERROR_OUTOFMEMORY || e == ERROR_COMMITMENT_LIMIT)
      return ferry__err(FERRY_ETOOBIG,
                        "no room to map %llu bytes in this process: %s; map "
                        "it in windows (ferry_window)",
                        (unsigned long long)len, win_msg(e, m, sizeof m));
    if (e == ERROR_ACCESS_DENIED)
      return ferry__err(FERRY_EACCES,
                        "MapViewOfFile %s: the handle does not "
                        "allow it",
                        (flags & FERRY_OS_MAP_WRITE) ? "read-write"
                                                     : "read-only");
    if (e == ERROR_INVALID_PARAMETER)
      return ferry__err(FERRY_EINVAL,
                        "MapViewOfFile: %llu bytes at offset %llu are beyond "
                        "the object's end",
                        (unsigned long long)len, (unsigned long long)offset);
    return os_err(e, "MapViewOfFile");
  }
  if (flags & FERRY_OS_MAP_POPULATE) {
    /* Touch one byte per page (reads: the pages of a committed section
     * are zero-filled on first touch either way). */
    volatile const unsigned char *b = (volatile const unsigned char *)p;
    uint64_t i;
    unsigned char sink = 0;
    for (i = 0; i < len; i += c->page_size)
      sink ^= b[i];
    (void)sink;
  }
  if (flags & FERRY_OS_MAP_LOCK) {
    if (!VirtualLock(p, (SIZE_T)len)) {
      DWORD e = GetLastError();
      SIZE_T mn = 0, mx = 0;
      char lim[32] = "unknown", m[256];
      if (GetProcessWorkingSetSize(GetCurrentProcess(), &mn, &mx))
        ferry__fmt_bytes((uint64_t)mn, lim, sizeof lim);
      UnmapViewOfFile(p);
      return ferry__err(FERRY_ENOMEM,
                        "VirtualLock of %llu bytes: %s (the minimum working "
                        "set is %s; raise it with SetProcessWorkingSetSize)",
                        (unsigned long long)len, win_msg(e, m, sizeof m), lim);
    }
  }
  *addr = p;
  return 0;
}

int ferry_os_unmap(void *addr, uint64_t len) {
  (void)len;
  if (!UnmapViewOfFile(addr))
    return os_err(GetLastError(), "UnmapViewOfFile");
  return 0;
}

int ferry_os_advise(void *addr, uint64_t len, unsigned advice) {
  (void)addr;
  (void)len;
  if (advice > FERRY_OS_ADVISE_RANDOM)
    return ferry__err(FERRY_EINVAL, "unknown access advice %u", advice);
  return 0; /* Windows takes no access-pattern hint for mapped views */
}

int ferry_os_sync(const ferry_os_shm *o, void *addr, uint64_t len) {
  if (addr && !FlushViewOfFile(addr, (SIZE_T)len))
    return os_err(GetLastError(), "FlushViewOfFile");
  if (o->file != FERRY_OS_NO_HANDLE && !FlushFileBuffers(H(o->file))) {
    DWORD e = GetLastError();
    if (e != ERROR_ACCESS_DENIED) /* a read-only handle: nothing to flush */
      return os_err(e, "FlushFileBuffers");
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Faults on memory that another process cut off                          */

/* Windows refuses to shrink a file or section while a view of it is mapped
 * (ERROR_USER_MAPPED_FILE), so no mapping needs guarding. */
int ferry_os_shm_can_shrink(const ferry_os_shm *o) {
  (void)o;
  return 0;
}

int ferry_os_fault_handler(int on, int (*recover)(void *addr)) {
  (void)on; /* nothing to install: no mapping is ever guarded */
  (void)recover;
  return 0;
}

int ferry_os_fault_patch(void *addr, size_t len, int writable) {
  (void)addr;
  (void)len;
  (void)writable;
  return -1;
}

/* ---------------------------------------------------------------------- */
/* Wait and wake: a named semaphore per wait point                        */

/* Most units a wait point's semaphore holds. A waker releases one unit per
 * counted sleeper; a sleeper that found the state ready before it slept
 * leaves its unit behind, which costs a later sleeper one spurious wake-up.
 * The cap bounds that. */
#define WAITPOINT_MAX_UNITS 1024

int ferry_os_waitpoint_open(ferry_os_waitpoint *wp, const char *name,
                            int global, uint32_t mode, unsigned index) {
  char base[FERRY_NAME_MAX + 32], osname[FERRY_NAME_MAX + 64];
  PSECURITY_DESCRIPTOR sd = NULL;
  SECURITY_ATTRIBUTES sa;
  HANDLE h;
  DWORD e;
  int rc;
  wp->h = FERRY_OS_NO_HANDLE;
  if (!name)
    return ferry__err(FERRY_EINVAL, "a wait point needs a segment name");
  snprintf(base, sizeof base, "%s.%u", name, index);
  rc = ferry_os_object_name(FERRY_OS_NAME_SYNC, base, global, osname,
                            sizeof osname);
  if (rc != 0)
    return rc;
  rc = sd_from_mode(mode ? mode : 0600, SD_SYNC, &sd);
  if (rc != 0)
    return rc;
  sa.nLength = sizeof sa;
  sa.lpSecurityDescriptor = sd;
  sa.bInheritHandle = FALSE;
  h = CreateSemaphoreA(&sa, 0, WAITPOINT_MAX_UNITS, osname);
  e = GetLastError();
  LocalFree(sd);
  if (!h) {
    if (e == ERROR_INVALID_HANDLE)
      return other_kind_err(osname, "semaphore");
    return os_err(e, osname);
  }
  wp->h = (ferry_os_handle)h;
  return 0;
}

void ferry_os_waitpoint_close(ferry_os_waitpoint *wp) {
  if (wp->h != FERRY_OS_NO_HANDLE)
    CloseHandle(H(wp->h));
  wp->h = FERRY_OS_NO_HANDLE;
}

static DWORD ms_from_ns(int64_t ns) {
  int64_t ms = (ns + 999999) / 1000000;
  if (ms < 1)
    ms = 1;
  if (ms > (int64_t)0x7ffffffe)
    ms = 0x7ffffffe;
  return (DWORD)ms;
}

int ferry_os_wait(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t expected, int64_t timeout_ns) {
  DWORD r;
  if (timeout_ns <= 0)
    return FERRY_ETIMEDOUT;
  if (atomic_load(word) != expected)
    return 0;
  if (wp->h == FERRY_OS_NO_HANDLE) {
    Sleep(1);
    return 0;
  }
  r = WaitForSingleObject(H(wp->h), ms_from_ns(timeout_ns));
  if (r == WAIT_OBJECT_0)
    return 0;
  if (r == WAIT_TIMEOUT)
    return FERRY_ETIMEDOUT;
  return FERRY_EIO;
}

int ferry_os_wake(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t sleepers) {
  LONG n;
  (void)word;
  if (wp->h == FERRY_OS_NO_HANDLE || sleepers == 0)
    return 0;
  n = sleepers > WAITPOINT_MAX_UNITS ? WAITPOINT_MAX_UNITS : (LONG)sleepers;
  /* ERROR_TOO_MANY_POSTS: enough units are pending already. */
  (void)ReleaseSemaphore(H(wp->h), n, NULL);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Robust mutex: a named Windows mutex per lock                           */

/* What M holds (a Windows mutex keeps its owner in the kernel, but not the
 * robust state machine ferry promises). */
struct win_mutex {
  _Atomic uint64_t owner_pid; /* 0 = unowned */
  _Atomic uint32_t owner_tid;
  _Atomic uint32_t
      state; /* MX_CONSISTENT, MX_INCONSISTENT, MX_NOTRECOVERABLE */
};
_Static_assert(sizeof(struct win_mutex) <= FERRY_OS_MUTEX_SIZE,
               "the Windows mutex state fits the OS storage");

enum { MX_CONSISTENT = 0, MX_INCONSISTENT = 1, MX_NOTRECOVERABLE = 2 };

/* The process-wide table of open mutex handles, keyed by lock id. Handles
 * stay open until the process exits: closing one while another thread of
 * this process waits on it would be a use-after-close. */
struct mx_entry {
  uint64_t id;
  HANDLE h;
};
static SRWLOCK mx_lock = SRWLOCK_INIT;
static struct mx_entry *mx_table;
static size_t mx_count, mx_cap;

/* The handle of lock ID, opened (or created) on first use. */
static int mx_handle(uint64_t id, HANDLE *out) {
  char base[40], osname[80];
  size_t i;
  HANDLE h = NULL;
  int rc = 0;
  AcquireSRWLockExclusive(&mx_lock);
  for (i = 0; i < mx_count; i++)
    if (mx_table[i].id == id) {
      h = mx_table[i].h;
      break;
    }
  if (!h) {
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_ATTRIBUTES sa;
    DWORD e;
    snprintf(base, sizeof base, "@mutex-%016llx", (unsigned long long)id);
    rc = ferry_os_object_name(FERRY_OS_NAME_SYNC, base, 0, osname,
                              sizeof osname);
    if (rc == 0)
      rc = sd_from_mode(0666, SD_SYNC, &sd);
    if (rc == 0 && mx_count == mx_cap) {
      size_t ncap = mx_cap ? 2 * mx_cap : 16;
      struct mx_entry *t =
          (struct mx_entry *)realloc(mx_table, ncap * sizeof *t);
      if (!t)
        rc = ferry__err(FERRY_ENOMEM, "out of memory");
      else {
        mx_table = t;
        mx_cap = ncap;
      }
    }
    if (rc == 0) {
      sa.nLength = sizeof sa;
      sa.lpSecurityDescriptor = sd;
      sa.bInheritHandle = FALSE;
      h = CreateMutexA(&sa, FALSE, osname);
      e = GetLastError();
      if (!h)
        rc = e == ERROR_INVALID_HANDLE ? other_kind_err(osname, "mutex")
                                       : os_err(e, osname);
      else {
        mx_table[mx_count].id = id;
        mx_table[mx_count].h = h;
        mx_count++;
      }
    }
    LocalFree(sd);
  }
  ReleaseSRWLockExclusive(&mx_lock);
  *out = h;
  return rc;
}

uint16_t ferry_os_mutex_kind(void) {
  return (uint16_t)(0x3000u | (unsigned)sizeof(void *) << 8 |
                    (unsigned)sizeof(struct win_mutex));
}

int ferry_os_mutex_init(void *m, uint64_t lock_id) {
  struct win_mutex *w = (struct win_mutex *)m;
  (void)lock_id;
  atomic_store(&w->owner_pid, 0);
  atomic_store(&w->owner_tid, 0);
  atomic_store(&w->state, MX_CONSISTENT);
  return 0;
}

static int mx_mine(const struct win_mutex *w) {
  return atomic_load(&w->owner_pid) == (uint64_t)GetCurrentProcessId() &&
         atomic_load(&w->owner_tid) == (uint32_t)GetCurrentThreadId();
}

static int mx_not_recoverable(void) {
  return ferry__err(FERRY_ENOTRECOVERABLE,
                    "mutex lock: a previous owner died and its successor "
                    "unlocked without ferry_mutex_consistent(); the mutex "
                    "stays unusable until ferry_mutex_init()");
}

int ferry_os_mutex_lock(void *m, uint64_t lock_id, int64_t timeout_ns) {
  struct win_mutex *w = (struct win_mutex *)m;
  HANDLE h;
  int rc, abandoned = 0;
  int64_t end;
  DWORD r;
  if (atomic_load(&w->state) > MX_NOTRECOVERABLE)
    return ferry__err(FERRY_ECORRUPT,
                      "mutex lock: state word %u is not a "
                      "state (overwritten?)",
                      (unsigned)atomic_load(&w->state));
  if (mx_mine(w))
    return ferry__err(FERRY_EBUSY, "mutex lock: the calling thread holds it");
  rc = mx_handle(lock_id, &h);
  if (rc != 0)
    return rc;
  end = ferry_os_monotonic_ns();
  end = timeout_ns > INT64_MAX - end ? INT64_MAX : end + timeout_ns;
  for (;;) {
    int64_t left = timeout_ns <= 0 ? 0 : end - ferry_os_monotonic_ns();
    DWORD ms = left <= 0 ? 0 : ms_from_ns(left);
    r = WaitForSingleObject(h, ms);
    if (r == WAIT_TIMEOUT && timeout_ns > 0 && ferry_os_monotonic_ns() < end)
      continue; /* a slice of a very long wait */
    break;
  }
  if (r == WAIT_TIMEOUT)
    return timeout_ns <= 0 ? FERRY_EBUSY : FERRY_ETIMEDOUT;
  if (r == WAIT_ABANDONED)
    abandoned = 1;
  else if (r != WAIT_OBJECT_0)
    return os_err(GetLastError(), "WaitForSingleObject (mutex)");
  else if (atomic_load(&w->owner_pid) != 0)
    /* Held, and M still names an owner: every unlock clears it before
     * ReleaseMutex, so that owner died holding the lock, and the kernel
     * object went with its last handle and has been created anew. (Read
     * only now, under the lock: before the wait, another process may have
     * opened the new object and locked it.) */
    abandoned = 1;
  if (!abandoned && atomic_load(&w->state) == MX_NOTRECOVERABLE) {
    ReleaseMutex(h);
    return mx_not_recoverable();
  }
  atomic_store(&w->owner_pid, (uint64_t)GetCurrentProcessId());
  atomic_store(&w->owner_tid, (uint32_t)GetCurrentThreadId());
  if (abandoned) {
    if (atomic_load(&w->state) == MX_NOTRECOVERABLE) {
      atomic_store(&w->owner_pid, 0);
      ReleaseMutex(h);
      return mx_not_recoverable();
    }
    atomic_store(&w->state, MX_INCONSISTENT);
    return FERRY_EOWNERDEAD;
  }
  return 0;
}

int ferry_os_mutex_consistent(void *m, uint64_t lock_id) {
  struct win_mutex *w = (struct win_mutex *)m;
  (void)lock_id;
  if (!mx_mine(w) || atomic_load(&w->state) != MX_INCONSISTENT)
    return ferry__err(FERRY_EINVAL, "mutex consistent: the mutex is not held "
                                    "after FERRY_EOWNERDEAD");
  atomic_store(&w->state, MX_CONSISTENT);
  return 0;
}

int ferry_os_mutex_unlock(void *m, uint64_t lock_id) {
  struct win_mutex *w = (struct win_mutex *)m;
  HANDLE h;
  int rc;
  if (!mx_mine(w))
    return ferry__err(FERRY_EINVAL,
                      "mutex unlock: the calling thread does not hold it");
  rc = mx_handle(lock_id, &h);
  if (rc != 0)
    return rc;
  if (atomic_load(&w->state) == MX_INCONSISTENT)
    atomic_store(&w->state, MX_NOTRECOVERABLE);
  atomic_store(&w->owner_tid, 0);
  atomic_store(&w->owner_pid, 0);
  if (!ReleaseMutex(h))
    return os_err(GetLastError(), "ReleaseMutex");
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Processes and time                                                     */

uint64_t ferry_os_pid(void) { return (uint64_t)GetCurrentProcessId(); }

int ferry_os_proc_start(uint64_t pid, uint64_t *start) {
  HANDLE p;
  FILETIME created, exited, kernel, user;
  DWORD r;
  if (pid == 0 || pid > 0xffffffffu)
    return FERRY_ENOENT;
  p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE,
                  (DWORD)pid);
  if (!p) {
    DWORD e = GetLastError();
    return e == ERROR_ACCESS_DENIED ? FERRY_EACCES : FERRY_ENOENT;
  }
  /* Exited but still referenced by a handle somewhere: gone. (Not the exit
   * code: STILL_ACTIVE, 259, is also a legal exit code.) */
  r = WaitForSingleObject(p, 0);
  if (r == WAIT_OBJECT_0 ||
      !GetProcessTimes(p, &created, &exited, &kernel, &user)) {
    CloseHandle(p);
    return FERRY_ENOENT;
  }
  CloseHandle(p);
  *start = (uint64_t)created.dwHighDateTime << 32 | created.dwLowDateTime;
  return 0;
}

uint64_t ferry_os_boot_id(void) {
  /* SystemTimeOfDayInformation (3) holds the boot time, fixed for a boot. */
  struct {
    LARGE_INTEGER boot, now, tz_bias;
    ULONG tz_id, reserved;
    ULONGLONG boot_bias, sleep_bias;
  } tod;
  nt_query_sysinfo_fn q =
      (nt_query_sysinfo_fn)(void (*)(void))nt_proc("NtQuerySystemInformation");
  memset(&tod, 0, sizeof tod);
  if (!q || q(3, &tod, sizeof tod, NULL) < 0 || tod.boot.QuadPart == 0)
    return 0;
  return (uint64_t)tod.boot.QuadPart;
}

int64_t ferry_os_realtime_ns(void) {
  FILETIME ft;
  uint64_t t;
  GetSystemTimePreciseAsFileTime(&ft);
  t = (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
  /* 100 ns units since 1601 -> ns since 1970 */
  return (int64_t)(t - 116444736000000000ull) * 100;
}

int64_t ferry_os_monotonic_ns(void) {
  LARGE_INTEGER c, freq;
  ferry_os_caps_get();
  freq = qpc_freq;
  QueryPerformanceCounter(&c);
  return (int64_t)((c.QuadPart / freq.QuadPart) * 1000000000 +
                   (c.QuadPart % freq.QuadPart) * 1000000000 / freq.QuadPart);
}

void ferry_os_sleep_ns(int64_t ns) {
  if (ns <= 0)
    return;
  if (ns < 1000000) { /* below the timer's granularity: yield instead */
    int64_t end = ferry_os_monotonic_ns() + ns;
    while (ferry_os_monotonic_ns() < end)
      SwitchToThread();
    return;
  }
  Sleep(ms_from_ns(ns));
}
