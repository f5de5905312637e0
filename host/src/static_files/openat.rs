//! `openat2(2)` (Linux 5.6+): the kernel resolves a path below a directory descriptor and refuses, during
//! that one walk, anything that would leave it. std has no binding; this is the only `unsafe` of the
//! static files.
//!
//! Every open here uses `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`: no `..` above the
//! directory, no absolute path, and no symlink anywhere on the way (not even the last component), all
//! checked atomically with the open. A path that meets a symlink fails with `ELOOP`; the resolver then
//! takes its path-based way, which follows symlinks and checks where they lead.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// How a file is opened for serving. `O_NONBLOCK`: opening a FIFO must not block the worker waiting for a
/// writer. `O_NOCTTY`: a terminal device under the root must never become our controlling terminal.
const READ_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;

/// Opens `path` (relative, no symlink anywhere) below the directory `dir` for reading. `ELOOP` when the
/// path meets a symlink, `EXDEV` when it would leave `dir`, `ENOSYS` (or `EPERM` under some seccomp
/// filters) when the kernel has no `openat2`.
pub fn open_beneath(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<File> {
    let fd = openat2(
        dir.as_raw_fd(),
        path,
        READ_FLAGS,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

/// An `O_PATH` descriptor of the directory at `path`, an absolute path with no symlink in it (a canonical
/// path): `ELOOP` if one of its components has become a symlink since it was canonicalized, `ENOTDIR` if
/// it is no longer a directory. An `O_PATH` descriptor cannot read anything itself; it only anchors
/// [`open_beneath`].
pub fn open_directory(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    openat2(
        libc::AT_FDCWD,
        &path,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// Whether `error` says the kernel (or a seccomp filter in front of it) does not offer `openat2`:
/// `ENOSYS` before Linux 5.6, `EPERM` from container runtimes whose filter predates the call, `E2BIG` /
/// `EINVAL` if it knows neither our `open_how` size nor our `RESOLVE_*` flags.
pub fn is_unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::E2BIG | libc::EINVAL)
    ) || error.kind() == io::ErrorKind::Unsupported
}

/// The kernel's `struct open_how` (`linux/openat2.h`, its first version, 24 bytes). libc's is
/// `#[non_exhaustive]`, so it cannot be built without `unsafe`.
#[cfg(target_os = "linux")]
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

#[cfg(target_os = "linux")]
fn openat2(dir: libc::c_int, path: &CStr, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        // The O_* bits are non-negative: widening, no sign extension.
        flags: flags as u64,
        mode: 0,
        resolve,
    };
    loop {
        // SAFETY: `path` is NUL-terminated and `how` a valid `struct open_how` whose size we pass; both outlive
        // the call. `dir` is a descriptor the caller keeps open for the call, or AT_FDCWD.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just returned this descriptor to us; nothing else owns it. Descriptors
            // fit in a c_int.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn openat2(
    _dir: libc::c_int,
    _path: &CStr,
    _flags: libc::c_int,
    _resolve: u64,
) -> io::Result<OwnedFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::static_files::test_support::TempDir;

    /// Only where the kernel has openat2 (the CI machines do); elsewhere the fallback tests cover it.
    fn root_with_openat2(tmp: &TempDir) -> Option<OwnedFd> {
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        match open_directory(&root) {
            Ok(fd) => Some(fd),
            Err(error) if is_unsupported(&error) => None,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn opens_below_and_refuses_symlinks_and_escapes() {
        let tmp = TempDir::new("static");
        let Some(root) = root_with_openat2(&tmp) else {
            return;
        };
        std::fs::create_dir(tmp.join("dir")).unwrap();
        std::fs::write(tmp.join("dir/f.txt"), "F").unwrap();
        symlink("f.txt", tmp.join("dir/link")).unwrap();
        symlink("dir", tmp.join("dirlink")).unwrap();
        let mut content = String::new();
        open_beneath(root.as_fd(), c"dir/f.txt")
            .unwrap()
            .read_to_string(&mut content)
            .unwrap();
        assert_eq!(content, "F");
        let errno = |path: &CStr| open_beneath(root.as_fd(), path).unwrap_err().raw_os_error();
        assert_eq!(errno(c"dir/link"), Some(libc::ELOOP));
        assert_eq!(errno(c"dirlink/f.txt"), Some(libc::ELOOP));
        assert_eq!(errno(c"../x"), Some(libc::EXDEV));
        assert_eq!(errno(c"/etc/passwd"), Some(libc::EXDEV));
        assert_eq!(errno(c"missing"), Some(libc::ENOENT));
    }

    #[test]
    fn a_root_path_with_a_symlink_in_it_is_refused() {
        let tmp = TempDir::new("static");
        if root_with_openat2(&tmp).is_none() {
            return;
        }
        let canonical = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(canonical.join("real")).unwrap();
        symlink("real", canonical.join("alias")).unwrap();
        assert!(open_directory(&canonical.join("real")).is_ok());
        let error = open_directory(&canonical.join("alias")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ELOOP));
    }
}
