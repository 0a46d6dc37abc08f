using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>
    /// Backup-BmadStore: a point-in-time snapshot taken while publishers keep publishing.
    /// <para>
    /// Under the writers' lock, for as long as it takes to scan the active segment's tail (a few KB read
    /// from its end) and open every segment, it records the consistent point: the last seq, and the
    /// active segment's valid length. It then releases the lock and copies from the handles it opened:
    /// sealed segments whole (the store never writes them again) and the active segment up to the
    /// recorded length (later appends land after it). The backup is therefore exactly the log up to the
    /// recorded seq. Open handles keep their files even if a restore or repair renames them meanwhile.
    /// </para>
    /// <para>
    /// The backup is written under a temporary name (<c>.&lt;name&gt;.tmp</c>), every file fsynced, then the
    /// manifest (listing every file's size and SHA-256, the seq range and event count, and its own
    /// checksum) is written and fsynced, everything is read back and checked against the manifest, and
    /// only then is the directory renamed to its final name. A directory with a backup name is therefore
    /// always complete and was verified when made.
    /// </para>
    /// <para>
    /// Incremental: a sealed segment that the newest verified earlier backup in the same destination
    /// already holds (same name, size and seq range) is hard-linked from it instead of copied; when the
    /// link fails (another volume, a file system without links) it is copied. The read-back check hashes
    /// linked files too, so a link to damaged bytes fails the backup. Backups that share a link share the
    /// bytes: damage to one inode is in both (the verifier reports it in each).
    /// </para>
    /// </summary>
    public static class StoreBackup
    {
        public static BackupInfo Create(string storeRoot, BackupOptions? options = null, IProgress<BackupProgress>? progress = null,
            CancellationToken cancellationToken = default)
        {
            try
            {
                return CreateUnmapped(storeRoot, options, progress, cancellationToken);
            }
            catch (IOException ex) when (StoreFs.IsDiskFull(ex))
            {
                throw StoreFs.MapIOException(ex, $"Backing up '{storeRoot}'", storeRoot, "The unfinished backup was removed; free some space (or choose another destination) and back up again.");
            }
        }

        private static BackupInfo CreateUnmapped(string storeRoot, BackupOptions? options, IProgress<BackupProgress>? progress,
            CancellationToken cancellationToken)
        {
            options ??= new BackupOptions();
            storeRoot = BackupCatalog.RequireStore(storeRoot);
            if (options.Retention != null)
            {
                BackupCatalog.ValidatePolicy(options.Retention);
            }

            string destination = ResolveDestination(storeRoot, options.Destination);
            var info = CreateCore(storeRoot, destination, BackupKinds.Backup, lockHeld: false, options.LockTimeout, options.IO, options.Incremental, progress, cancellationToken,
                options.Clock);
            if (!string.Equals(destination, BackupLayout.DefaultDestination(storeRoot), StringComparison.Ordinal))
            {
                BackupCatalog.RememberDestination(storeRoot, destination, options.IO);
            }

            if (options.Retention != null && !options.Retention.IsEmpty)
            {
                info.Retention = BackupCatalog.Forget(storeRoot, options.Retention, destination, options.IO, cancellationToken, justMade: info.Name);
            }

            return info;
        }

        /// <summary>Checks a destination before anything is written: not a file, not inside the store (except its backups folder).</summary>
        internal static string ResolveDestination(string storeRoot, string? destination)
        {
            string defaultDest = BackupLayout.DefaultDestination(storeRoot);
            if (string.IsNullOrWhiteSpace(destination))
            {
                return defaultDest;
            }

            string dest = Path.GetFullPath(destination);
            if (File.Exists(dest))
            {
                throw new BmadGuardException(ErrorCodes.InvalidBackupDestination, FailureKind.InvalidInput,
                    $"Backup destination '{dest}' is a file; give a directory.", dest);
            }

            if (BackupFiles.IsSameOrInside(dest, storeRoot) && !BackupFiles.IsSameOrInside(dest, defaultDest))
            {
                throw new BmadGuardException(ErrorCodes.InvalidBackupDestination, FailureKind.InvalidInput,
                    $"Backup destination '{dest}' is inside the store '{storeRoot}' (its segments, consumers or quarantine). " +
                    $"Leave out --dest to use '{defaultDest}', or give a directory outside the store, ideally on another volume.", dest);
            }

            return dest;
        }

        private sealed class SourceSegment
        {
            public SourceSegment(string name, long firstSeq, long lastSeq, long length, bool sealedSegment, FileStream stream)
            {
                Name = name;
                FirstSeq = firstSeq;
                LastSeq = lastSeq;
                Length = length;
                Sealed = sealedSegment;
                Stream = stream;
            }

            public string Name { get; }
            public long FirstSeq { get; }
            public long LastSeq { get; }
            public long Length { get; }
            public bool Sealed { get; }
            public FileStream Stream { get; }
        }

        /// <summary>
        /// Makes one backup in <paramref name="destination"/>. With <paramref name="lockHeld"/> the caller
        /// (restore) holds the writers' lock already, and the copy is of the bytes as they are, damage
        /// included (a safety backup); otherwise the store's records must hold.
        /// </summary>
        internal static BackupInfo CreateCore(string storeRoot, string destination, string kind, bool lockHeld, TimeSpan lockTimeout, IStorageIO io,
            bool incremental, IProgress<BackupProgress>? progress, CancellationToken cancellationToken, Func<DateTimeOffset>? clock = null)
        {
            clock ??= () => DateTimeOffset.UtcNow; // names and times only: which backup is newest is decided by the log (BackupCatalog.LogOrder)
            var started = clock();
            string name = BackupLayout.NewName(started);
            string segmentsDir = Path.Combine(storeRoot, StorePaths.SegmentsDirName);
            bool safety = kind == BackupKinds.Safety;
            // Nothing below the store root (for backups/) or below a --dest elsewhere is followed through a link.
            io = StoreFs.Confine(StoreFs.IsUnder(Path.GetFullPath(storeRoot), Path.GetFullPath(destination)) ? storeRoot : destination, io);

            // 1. The destination, checked by creating what we need; on failure nothing is left behind.
            bool createdDestination = !Directory.Exists(destination);
            string? firstCreated = null; // the highest directory this backup creates, removed again on failure
            for (string? d = destination; d != null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
            {
                firstCreated = d;
            }

            string temp = Path.Combine(destination, "." + name + BackupLayout.TempSuffix);
            try
            {
                io.CreateDirectory(destination);
                io.CreateDirectory(temp);
                io.CreateDirectory(Path.Combine(temp, BackupLayout.SegmentsDir));
            }
            catch (Exception ex) when ((ex is IOException && !StoreFs.IsDiskFull(ex)) || ex is UnauthorizedAccessException)
            {
                BackupFiles.TryDeleteDirectory(temp);
                if (firstCreated != null)
                {
                    BackupFiles.TryDeleteDirectory(firstCreated);
                }

                throw new BmadGuardException(ErrorCodes.BackupDestinationNotWritable, FailureKind.StoreProblem,
                    $"Cannot write a backup to '{destination}': {ex.Message}. Choose a writable directory with --dest (-Destination).", destination, inner: ex);
            }

            var sources = new List<SourceSegment>();
            try
            {
                var previous = incremental ? FindPrevious(storeRoot, destination, safety, cancellationToken) : null;

                // 2. The consistent point, under the writers' lock (held only for this).
                long lastSeq;
                DateTimeOffset? lastTimestamp;
                DateTimeOffset consistentAt;
                long? writerEpoch = null;
                byte[] meta;
                StoreLock? held = lockHeld ? null : StoreLock.Acquire(Path.Combine(storeRoot, StorePaths.LockFileName), lockTimeout, cancellationToken);
                try
                {
                    (lastSeq, lastTimestamp) = RecordPoint(segmentsDir, safety, sources);
                    consistentAt = clock();
                    writerEpoch = held?.ReadEpoch(); // with lockHeld (a restore's safety backup) the caller's handle has it; not needed there
                    meta = File.ReadAllBytes(Path.Combine(storeRoot, StorePaths.MetaFileName));
                }
                finally
                {
                    held?.Dispose();
                }

                // 3. Copy (or link) outside the lock: publishers carry on.
                long total = sources.Sum(s => s.Length);
                long done = 0;
                var bytes = new Progress(progress, "Backing up " + storeRoot, total);
                var manifest = new BackupManifest
                {
                    Name = name,
                    Kind = kind,
                    StoreId = BackupLayout.StoreId(storeRoot),
                    StorePath = storeRoot,
                    Created = started,
                    ConsistentAt = consistentAt,
                    FirstSeq = sources.Count > 0 ? sources[0].FirstSeq : 1,
                    LastSeq = lastSeq,
                    LastTimestamp = lastTimestamp,
                    WriterEpoch = writerEpoch,
                };
                manifest.EventCount = Math.Max(0, lastSeq - manifest.FirstSeq + 1);

                string metaTarget = Path.Combine(temp, StorePaths.MetaFileName);
                using (var ms = new MemoryStream(meta))
                {
                    manifest.Files.Add(new ManifestFile { Path = StorePaths.MetaFileName, Size = meta.Length, Sha256 = BackupFiles.CopyDurably(ms, meta.Length, metaTarget, io, null, cancellationToken) });
                }

                int copied = 1, reused = 0, linked = 0;
                long bytesCopied = meta.Length, bytesReused = 0;
                var copiedSegments = new HashSet<string>(StringComparer.Ordinal);
                var preverified = new Dictionary<string, SegmentScan>(StringComparer.Ordinal);
                foreach (var s in sources)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    string rel = BackupLayout.SegmentsDir + "/" + s.Name;
                    string target = BackupLayout.ToFullPath(temp, rel);
                    var entry = new ManifestFile { Path = rel, Size = s.Length, FirstSeq = s.FirstSeq, LastSeq = s.LastSeq, Sealed = s.Sealed };
                    ManifestFile? earlier = null;
                    if (previous != null && s.Sealed)
                    {
                        earlier = previous.Value.Manifest.Files.FirstOrDefault(f => f.Path == rel && f.Size == s.Length && f.Sealed
                                                                                    && f.FirstSeq == s.FirstSeq && f.LastSeq == s.LastSeq);
                    }

                    if (earlier != null && safety && BackupFiles.HashStream(s.Stream, s.Length, cancellationToken) != earlier.Sha256)
                    {
                        // A safety backup keeps the store's bytes as they are: reuse only an identical copy
                        // (content-addressed), never a good copy in place of a damaged segment.
                        earlier = null;
                    }

                    if (earlier != null && TryReuse(BackupLayout.ToFullPath(previous!.Value.Dir, rel), target, earlier, preverified, rel, cancellationToken))
                    {
                        entry.Sha256 = earlier.Sha256; // the linked bytes were just hashed and matched it
                        entry.ReusedFrom = previous.Value.Manifest.Name;
                        reused++;
                        linked++;
                        bytesReused += s.Length;
                        bytes.Add(s.Length);
                    }
                    else
                    {
                        entry.Sha256 = BackupFiles.CopyDurably(s.Stream, s.Length, target, io, bytes, cancellationToken);
                        copied++;
                        bytesCopied += s.Length;
                        copiedSegments.Add(rel);
                    }

                    done += s.Length;
                    manifest.Files.Add(entry);
                }

                // 4. The manifest last, then the directories: everything it names is durable before it is.
                using (var m = io.OpenForWrite(Path.Combine(temp, BackupLayout.ManifestFileName), createNew: true))
                {
                    byte[] encoded = manifest.Encode();
                    m.Write(encoded, 0, encoded.Length);
                    io.Sync(m); // the manifest is what makes the backup restorable: durable before the rename publishes it
                }

                io.SyncDirectory(Path.Combine(temp, BackupLayout.SegmentsDir)); // the copied segments' names are durable
                io.SyncDirectory(temp); // the manifest's and settings' names are durable

                // 5. Read everything back and check it against the manifest before calling it done.
                var verification = BackupVerifier.VerifyCore(temp, name, BackupCheck.Deep, progress, cancellationToken, preverified);
                var error = verification.Findings.FirstOrDefault(f => f.Severity == FindingSeverity.Error);
                if (error != null)
                {
                    string rel = error.File.Length > temp.Length ? error.File.Substring(temp.Length + 1).Replace(Path.DirectorySeparatorChar, '/') : "";
                    if (error.Code == BackupFindingCodes.RecordDamaged && copiedSegments.Contains(rel))
                    {
                        string storeFile = Path.Combine(storeRoot, rel.Replace('/', Path.DirectorySeparatorChar));
                        throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                            $"The store is damaged, so no backup was made: '{storeFile}' at byte {error.Offset}: {error.Message} " +
                            "Run Test-BmadIntegrity for a full report, then Repair-BmadStore or Restore-BmadStore.", storeFile, error.Offset);
                    }

                    throw new BmadGuardException(ErrorCodes.BackupDamaged, FailureKind.StoreProblem,
                        $"The backup did not match its manifest when read back, so it was not kept: {error.Message} ('{error.File}'). " +
                        "The destination may be failing; try another one.", error.File, error.Offset);
                }

                // 6. Publish: one rename, made durable.
                string final = Path.Combine(destination, name);
                Directory.Move(temp, final);
                io.SyncDirectory(destination); // the rename that makes the backup exist must survive a crash
                if (createdDestination)
                {
                    string? parent = Path.GetDirectoryName(destination);
                    if (parent != null)
                    {
                        io.SyncDirectory(parent); // and so must the destination directory we created
                    }
                }

                var info = BackupCatalog.ToInfo(final, new BackupVerification(name, final, BackupCheck.Deep, verification.Findings,
                    verification.BytesChecked, verification.RecordsChecked) { Manifest = manifest });
                info.FilesCopied = copied;
                info.BytesCopied = bytesCopied;
                info.FilesReused = reused;
                info.FilesLinked = linked;
                info.BytesReused = bytesReused;
                info.ReusedFrom = reused > 0 ? previous!.Value.Manifest.Name : null;
                progress?.Report(new BackupProgress("Backing up " + storeRoot, null, total, total));
                return info;
            }
            catch
            {
                BackupFiles.TryDeleteDirectory(temp); // only our own unfinished copy
                if (firstCreated != null && !Directory.EnumerateFileSystemEntries(firstCreated, "*", SearchOption.AllDirectories).Any(e => File.Exists(e)))
                {
                    BackupFiles.TryDeleteDirectory(firstCreated); // directories we created, still empty
                }

                throw;
            }
            finally
            {
                foreach (var s in sources)
                {
                    s.Stream.Dispose();
                }
            }
        }

        /// <summary>
        /// Hard-links an earlier backup's copy of a sealed segment, then hashes the linked bytes (and checks
        /// their records) against the earlier manifest. A link to bytes that no longer match is removed and
        /// the caller copies from the store instead, so one damaged old backup never spreads into new ones.
        /// </summary>
        private static bool TryReuse(string earlierFile, string target, ManifestFile earlier, Dictionary<string, SegmentScan> preverified, string rel,
            CancellationToken cancellationToken)
        {
            if (!File.Exists(earlierFile) || !BackupFiles.TryHardLink(earlierFile, target))
            {
                return false;
            }

            // The hash alone: equal bytes mean the records are the ones the earlier backup checked when it was made.
            var scan = BackupFiles.Scan(target, checkRecords: false, null, cancellationToken);
            if (scan.Sha256 == earlier.Sha256 && scan.Size == earlier.Size)
            {
                scan.FirstSeq = earlier.FirstSeq ?? -1;
                scan.LastSeq = earlier.LastSeq ?? -1;
                preverified[rel] = scan; // the read-back check below uses this scan instead of reading the file again
                return true;
            }

            File.Delete(target); // our own link, not the earlier backup's file
            return false;
        }

        /// <summary>
        /// Under the lock: lists the segments, finds the active one's valid end, and opens every segment so
        /// the copy reads these very files whatever happens to their names afterwards.
        /// </summary>
        private static (long LastSeq, DateTimeOffset? LastTimestamp) RecordPoint(string segmentsDir, bool safety, List<SourceSegment> sources)
        {
            if (!Directory.Exists(segmentsDir))
            {
                if (safety)
                {
                    return (0, null);
                }

                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"The store has no segments directory '{segmentsDir}'. Run Repair-BmadStore or Restore-BmadStore.", segmentsDir);
            }

            var segments = SegmentNames.List(segmentsDir);
            if (segments.Count == 0 && !safety)
            {
                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"The store has no segments: '{segmentsDir}' is empty. Run Repair-BmadStore or Restore-BmadStore.", segmentsDir);
            }

            long lastSeq = 0;
            DateTimeOffset? lastTimestamp = null;
            for (int i = 0; i < segments.Count; i++)
            {
                var (firstSeq, path) = segments[i];
                var stream = BackupFiles.OpenRead(path);
                bool isLast = i == segments.Count - 1;
                long length = stream.Length;
                long segLast = isLast ? firstSeq - 1 : segments[i + 1].FirstSeq - 1;
                if (isLast)
                {
                    try
                    {
                        var tail = SegmentTail.Scan(path);
                        if (!safety)
                        {
                            length = tail.ValidEnd; // a torn tail or an append in flight is not part of the backup
                        }

                        segLast = tail.LastSeq;
                        lastTimestamp = tail.LastTimestamp;
                        if (lastTimestamp == null && i > 0)
                        {
                            lastTimestamp = SegmentTail.Scan(segments[i - 1].Path).LastTimestamp;
                        }
                    }
                    catch (BmadGuardException) when (safety)
                    {
                        // A damaged active segment: the safety backup keeps its bytes as they are.
                    }
                    catch (Exception ex) when (ex is IOException && !safety)
                    {
                        stream.Dispose();
                        throw StoreFs.MapIOException((IOException)ex, $"Cannot read segment '{path}'", path);
                    }
                    catch
                    {
                        stream.Dispose();
                        throw;
                    }

                    lastSeq = segLast;
                }

                sources.Add(new SourceSegment(Path.GetFileName(path), firstSeq, segLast, length, !isLast, stream));
            }

            return (lastSeq, lastTimestamp);
        }

        /// <summary>The newest verified (quick check) earlier backup of this store in this destination, for reuse.</summary>
        /// <remarks>
        /// A regular backup reuses only regular backups' files: those had their records checked when made,
        /// whereas a safety backup may hold a damaged store's bytes. A safety backup may reuse either, since
        /// it reuses only files byte-identical to the store's (content-addressed).
        /// </remarks>
        private static (string Dir, BackupManifest Manifest)? FindPrevious(string storeRoot, string destination, bool forSafety, CancellationToken cancellationToken)
        {
            if (!Directory.Exists(destination))
            {
                return null;
            }

            string storeId = BackupLayout.StoreId(storeRoot);
            foreach (string dir in Directory.EnumerateDirectories(destination).Where(d => BackupLayout.IsBackupName(Path.GetFileName(d)))
                         .OrderByDescending(d => Path.GetFileName(d), StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var v = BackupVerifier.VerifyCore(dir, Path.GetFileName(dir), BackupCheck.Quick, null, cancellationToken);
                if (v.Manifest != null && v.Manifest.StoreId == storeId && v.Healthy && (forSafety || v.Manifest.Kind == BackupKinds.Backup))
                {
                    return (dir, v.Manifest);
                }
            }

            return null;
        }

        /// <summary>Adds byte counts from the copy loops and reports progress now and then.</summary>
        private sealed class Progress : IProgress<long>
        {
            private readonly IProgress<BackupProgress>? _target;
            private readonly string _activity;
            private readonly long _total;
            private long _done;
            private long _lastReported;

            public Progress(IProgress<BackupProgress>? target, string activity, long total)
            {
                _target = target;
                _activity = activity;
                _total = total;
            }

            public void Add(long n) => Report(n);

            public void Report(long value)
            {
                _done += value;
                if (_target != null && (_done - _lastReported >= 16 << 20 || _done == _total))
                {
                    _lastReported = _done;
                    _target.Report(new BackupProgress(_activity, null, _done, _total));
                }
            }
        }
    }
}
