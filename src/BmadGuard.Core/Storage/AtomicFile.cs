using System;
using System.IO;

namespace BmadGuard.Core.Storage
{
    /// <summary>
    /// Replaces a whole file atomically: a reader sees the old contents or the new, never a mix, and after
    /// a crash the file holds one or the other. This is SQLite's and every careful editor's recipe.
    /// </summary>
    public static class AtomicFile
    {
        public static void Write(IStorageIO io, string path, byte[] contents)
        {
            string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
            string temp = Path.Combine(directory, "." + Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
            try
            {
                using (var stream = io.OpenForWrite(temp, createNew: true))
                {
                    stream.Write(contents, 0, contents.Length);
                    // fsync before the rename: otherwise a crash after the rename's journal commit can
                    // leave the new name pointing at a file whose data never reached the disk (zero length).
                    io.Sync(stream);
                }

                io.Move(temp, path);
            }
            catch
            {
                TryDelete(temp);
                throw;
            }

            // fsync the directory: the rename itself is only durable once the directory entry is.
            io.SyncDirectory(directory);
        }

        private static void TryDelete(string path)
        {
            try
            {
                File.Delete(path);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
