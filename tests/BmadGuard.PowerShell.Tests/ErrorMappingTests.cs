using System;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Reflection;
using System.Text.RegularExpressions;
using BmadGuard.Core;
using BmadGuard.Infrastructure;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>The Core error code → ErrorId / ErrorCategory table that scripts and Pester tests rely on.</summary>
    public class ErrorMappingTests
    {
        [Theory]
        [InlineData(ErrorCodes.InvalidEventType, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.ReservedEventType, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.InvalidSource, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.InvalidCorrelationId, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.InvalidConsumerName, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.InvalidData, FailureKind.InvalidInput, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.DataNotObject, FailureKind.InvalidInput, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.DataTooDeep, FailureKind.InvalidInput, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.InvalidUtf8, FailureKind.InvalidInput, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.EventTooLarge, FailureKind.InvalidInput, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.UnserializableData, FailureKind.InvalidInput, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.LockTimeout, FailureKind.StoreProblem, ErrorCategory.ResourceBusy)]
        [InlineData(ErrorCodes.StoreFull, FailureKind.StoreProblem, ErrorCategory.WriteError)]
        [InlineData(ErrorCodes.StoreIOError, FailureKind.StoreProblem, ErrorCategory.ResourceUnavailable)]
        [InlineData(ErrorCodes.StoreDamaged, FailureKind.StoreProblem, ErrorCategory.ReadError)]
        [InlineData(ErrorCodes.UnsupportedFormat, FailureKind.StoreProblem, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.StoreNotFound, FailureKind.StoreProblem, ErrorCategory.ObjectNotFound)]
        [InlineData(ErrorCodes.StoreAlreadyExists, FailureKind.StoreProblem, ErrorCategory.ResourceExists)]
        [InlineData(ErrorCodes.FileNotFound, FailureKind.InvalidInput, ErrorCategory.ObjectNotFound)]
        [InlineData(ErrorCodes.InvalidSchema, FailureKind.InvalidInput, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.LegacyFileDamaged, FailureKind.StoreProblem, ErrorCategory.ReadError)]
        [InlineData(ErrorCodes.InvalidBackupName, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.InvalidBackupDestination, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.BackupNotFound, FailureKind.InvalidInput, ErrorCategory.ObjectNotFound)]
        [InlineData(ErrorCodes.BackupDamaged, FailureKind.StoreProblem, ErrorCategory.InvalidData)]
        [InlineData(ErrorCodes.BackupDestinationNotWritable, FailureKind.StoreProblem, ErrorCategory.PermissionDenied)]
        [InlineData(ErrorCodes.ConfirmationRequired, FailureKind.InvalidInput, ErrorCategory.InvalidOperation)]
        [InlineData(ErrorCodes.InvalidConfiguration, FailureKind.InvalidInput, ErrorCategory.InvalidArgument)]
        [InlineData(ErrorCodes.MonitorAlreadyRunning, FailureKind.StoreProblem, ErrorCategory.ResourceBusy)]
        [InlineData(ErrorCodes.OutboxPending, FailureKind.StoreProblem, ErrorCategory.ResourceBusy)]
        [InlineData(ErrorCodes.DamagedRecord, FailureKind.StoreProblem, ErrorCategory.ReadError)]
        [InlineData(ErrorCodes.SetAsideNeedsForce, FailureKind.InvalidInput, ErrorCategory.InvalidOperation)]
        public void Each_core_code_has_its_category_and_an_ErrorId_of_command_plus_code(string code, FailureKind kind, ErrorCategory expected)
        {
            var (condition, category) = BmadCmdletSupport.Describe(new Core.BmadGuardException(code, kind, "m"));
            Assert.Equal(code, condition);
            Assert.Equal(expected, category);
            Assert.Equal("PublishBmadEvent" + code, BmadCmdletSupport.ErrorId("PublishBmadEvent", condition));
        }

        [Fact]
        public void The_example_id_from_the_conventions_is_what_bad_data_produces()
        {
            var (condition, _) = BmadCmdletSupport.Describe(new Core.BmadGuardException(ErrorCodes.InvalidData, FailureKind.InvalidInput, "m"));
            Assert.Equal("PublishBmadEventInvalidData", BmadCmdletSupport.ErrorId("PublishBmadEvent", condition));
        }

        [Fact]
        public void Every_code_Core_defines_gives_a_PascalCase_ErrorId()
        {
            var codes = typeof(ErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
                .Where(f => f.IsLiteral && f.FieldType == typeof(string))
                .Select(f => (string)f.GetRawConstantValue()!)
                .ToArray();
            Assert.NotEmpty(codes);
            foreach (string code in codes)
            {
                var (condition, _) = BmadCmdletSupport.Describe(new Core.BmadGuardException(code, FailureKind.StoreProblem, "m"));
                Assert.Matches(new Regex("^GetBmadEvent[A-Z][A-Za-z0-9]*$"), BmadCmdletSupport.ErrorId("GetBmadEvent", condition));
            }
        }

        [Fact]
        public void Restore_and_monitor_failures_get_their_command_prefixed_ids()
        {
            string Id(string prefix, string code, FailureKind kind)
                => BmadCmdletSupport.ErrorId(prefix, BmadCmdletSupport.Describe(new Core.BmadGuardException(code, kind, "m")).Condition);

            Assert.Equal("RestoreBmadStoreBackupDamaged", Id("RestoreBmadStore", ErrorCodes.BackupDamaged, FailureKind.StoreProblem));
            Assert.Equal("RestoreBmadStoreConfirmationRequired", Id("RestoreBmadStore", ErrorCodes.ConfirmationRequired, FailureKind.InvalidInput));
            Assert.Equal("StartBmadMonitorMonitorAlreadyRunning", Id("StartBmadMonitor", ErrorCodes.MonitorAlreadyRunning, FailureKind.StoreProblem));
            Assert.Equal("StartBmadMonitorInvalidConfiguration", Id("StartBmadMonitor", ErrorCodes.InvalidConfiguration, FailureKind.InvalidInput));
            Assert.Equal("GetBmadBackupInvalidBackupName", Id("GetBmadBackup", ErrorCodes.InvalidBackupName, FailureKind.InvalidInput));
            Assert.Equal("GetBmadBackupBackupNotFound", Id("GetBmadBackup", ErrorCodes.BackupNotFound, FailureKind.InvalidInput));
        }

        [Theory]
        [MemberData(nameof(CmdletSurfaceTests.CmdletTypes), MemberType = typeof(CmdletSurfaceTests))]
        public void Every_cmdlet_prefixes_its_ErrorIds_with_its_own_name(Type type)
        {
            var field = type.GetField("ErrorPrefix", BindingFlags.NonPublic | BindingFlags.Static);
            Assert.NotNull(field);
            Assert.Equal(type.Name.Substring(0, type.Name.Length - "Command".Length), (string)field!.GetRawConstantValue()!);
        }

        [Fact]
        public void A_code_Core_adds_later_still_gets_a_category_from_its_kind()
        {
            Assert.Equal(ErrorCategory.InvalidArgument, BmadCmdletSupport.CategoryFor("SomethingNewAndBad", FailureKind.InvalidInput));
            Assert.Equal(ErrorCategory.NotSpecified, BmadCmdletSupport.CategoryFor("SomethingNewInTheStore", FailureKind.StoreProblem));
        }

        [Fact]
        public void Plain_io_failures_are_store_failures_with_their_own_ids()
        {
            Assert.Equal((ErrorCodes.StoreIOError, ErrorCategory.ResourceUnavailable), BmadCmdletSupport.Describe(new IOException("disk")));
            Assert.Equal(("AccessDenied", ErrorCategory.PermissionDenied), BmadCmdletSupport.Describe(new UnauthorizedAccessException("no")));
            Assert.True(BmadCmdletSupport.IsStoreFailure(new IOException()));
            Assert.False(BmadCmdletSupport.IsStoreFailure(new InvalidOperationException()));
        }

        [Fact]
        public void A_link_inside_the_store_is_a_SecurityError_and_a_full_disk_is_StoreFull_even_unmapped()
        {
            Assert.Equal((ErrorCodes.StoreUnsafePath, ErrorCategory.SecurityError),
                BmadCmdletSupport.Describe(new Core.BmadGuardException(ErrorCodes.StoreUnsafePath, FailureKind.StoreProblem, "m")));
            Assert.Equal("RepairBmadStoreStoreUnsafePath", BmadCmdletSupport.ErrorId("RepairBmadStore", ErrorCodes.StoreUnsafePath));
            Assert.Equal((ErrorCodes.StoreFull, ErrorCategory.WriteError), BmadCmdletSupport.Describe(new IOException("No space left on device : 'x'", 28)));
        }

        [Fact]
        public void Only_input_failures_are_per_item()
        {
            Assert.True(BmadCmdletSupport.IsInvalidInput(new Core.BmadGuardException(ErrorCodes.DataTooDeep, FailureKind.InvalidInput, "m")));
            Assert.False(BmadCmdletSupport.IsInvalidInput(new Core.BmadGuardException(ErrorCodes.LockTimeout, FailureKind.StoreProblem, "m")));
            Assert.False(BmadCmdletSupport.IsInvalidInput(new IOException()));
        }
    }
}
