using System;

namespace BmadGuard.Core
{
    /// <summary>Whether a failure is the caller's input (CLI exit 2) or the store's condition (CLI exit 1).</summary>
    public enum FailureKind
    {
        /// <summary>Bad usage or bad input: nothing was written.</summary>
        InvalidInput,
        /// <summary>The store cannot do what was asked: damage, lock timeout, disk full, missing store.</summary>
        StoreProblem,
    }

    /// <summary>
    /// Every error BmadGuard reports on purpose. <see cref="Code"/> is stable (tests, ErrorIds and
    /// scripts depend on it); the message says what happened and what to do.
    /// </summary>
    public class BmadGuardException : Exception
    {
        public BmadGuardException(string code, FailureKind kind, string message, string? path = null, long? offset = null, Exception? inner = null)
            : base(message, inner)
        {
            Code = code;
            Kind = kind;
            Path = path;
            Offset = offset;
        }

        /// <summary>A stable PascalCase code, e.g. <c>LockTimeout</c>, <c>InvalidEventType</c>.</summary>
        public string Code { get; }

        public FailureKind Kind { get; }

        /// <summary>The file the error is about, when there is one.</summary>
        public string? Path { get; }

        /// <summary>The byte offset in <see cref="Path"/> the error is about, when there is one.</summary>
        public long? Offset { get; }
    }

    /// <summary>Stable error codes. Adding one is fine; renaming one breaks users.</summary>
    public static class ErrorCodes
    {
        public const string InvalidEventType = "InvalidEventType";
        public const string ReservedEventType = "ReservedEventType";
        public const string InvalidSource = "InvalidSource";
        public const string InvalidCorrelationId = "InvalidCorrelationId";
        public const string InvalidData = "InvalidData";
        public const string DataNotObject = "DataNotObject";
        public const string DataTooDeep = "DataTooDeep";
        public const string InvalidUtf8 = "InvalidUtf8";
        public const string EventTooLarge = "EventTooLarge";
        public const string UnserializableData = "UnserializableData";
        public const string InvalidConsumerName = "InvalidConsumerName";
        public const string InvalidArgument = "InvalidArgument";
        public const string StoreNotFound = "StoreNotFound";
        public const string StoreAlreadyExists = "StoreAlreadyExists";
        public const string StoreDamaged = "StoreDamaged";
        public const string StoreFull = "StoreFull";
        public const string StoreIOError = "StoreIOError";
        /// <summary>A symbolic link inside a store or a backup: BmadGuard refuses to follow or write through it.</summary>
        public const string StoreUnsafePath = "StoreUnsafePath";
        public const string LockTimeout = "LockTimeout";
        public const string UnsupportedFormat = "UnsupportedFormat";
        public const string InvalidBackupName = "InvalidBackupName";
        public const string BackupNotFound = "BackupNotFound";
        public const string BackupDamaged = "BackupDamaged";
        public const string InvalidBackupDestination = "InvalidBackupDestination";
        public const string BackupDestinationNotWritable = "BackupDestinationNotWritable";
        public const string ConfirmationRequired = "ConfirmationRequired";
        public const string InvalidConfiguration = "InvalidConfiguration";
        public const string MonitorAlreadyRunning = "MonitorAlreadyRunning";
        public const string OutboxPending = "OutboxPending";
        public const string FileNotFound = "FileNotFound";
        public const string InvalidSchema = "InvalidSchema";
        public const string LegacyFileDamaged = "LegacyFileDamaged";
        /// <summary>A legacy bus file's lock file is deleted or replaced by its writers: the lock excludes no one.</summary>
        public const string LegacyLockFileDeleted = "LegacyLockFileDeleted";

        /// <summary>A reader met records it could not read; the intact events around them were delivered.</summary>
        public const string DamagedRecord = "DamagedRecord";

        /// <summary>A restore would leave fewer events than the log holds now, and was not forced: nothing changed.</summary>
        public const string SetAsideNeedsForce = "SetAsideNeedsForce";
    }
}
