using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.Linq;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using BmadGuard.Infrastructure;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>
    /// -Data values as PowerShell hands them over (hashtables, ordered dictionaries, arrays, JSON strings)
    /// through the unwrapping and into a real store: what is stored is what the user gave. (PSObject and
    /// PSCustomObject need a PowerShell runspace: the Pester tests cover them.)
    /// </summary>
    public sealed class DataUnwrapTests : IDisposable
    {
        private readonly string _dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bmadguard-ps-tests", Guid.NewGuid().ToString("N"));
        private readonly FileEventStore _store;

        public DataUnwrapTests()
        {
            _store = FileEventStore.Initialize(_dir, null, null, out _);
        }

        public void Dispose()
        {
            _store.Dispose();
            try
            {
                System.IO.Directory.Delete(_dir, true);
            }
            catch (System.IO.IOException)
            {
            }
        }

        private string Stored(object? data, string? source = null)
            => _store.Publish(BmadCmdletSupport.ToDraft("test.data", data, source, null)).DataJson;

        [Fact]
        public void A_flat_hashtable_is_passed_on_as_it_is()
        {
            var h = new Hashtable { ["story"] = "S-1", ["points"] = 3 };
            Assert.Same(h, BmadCmdletSupport.UnwrapData(h));
            string json = Stored(h);
            Assert.Contains("\"story\":\"S-1\"", json);
            Assert.Contains("\"points\":3", json);
        }

        [Fact]
        public void An_ordered_dictionary_keeps_its_key_order()
        {
            var o = new OrderedDictionary { ["z"] = 1, ["a"] = 2, ["m"] = true };
            Assert.Equal("{\"z\":1,\"a\":2,\"m\":true}", Stored(o));
        }

        [Fact]
        public void Nested_lists_become_arrays_and_the_dictionary_holding_them_is_copied_not_changed()
        {
            var inner = new List<object?> { 1, "two", new object?[] { 3.5, null }, new Hashtable { ["k"] = "v" } };
            var o = new OrderedDictionary { ["list"] = inner, ["n"] = 1 };
            object? plain = BmadCmdletSupport.UnwrapData(o);
            Assert.NotSame(o, plain);
            Assert.Same(inner, o["list"]); // the caller's object is untouched
            var list = Assert.IsType<object?[]>(((IDictionary)plain!)["list"]);
            Assert.Equal(4, list.Length);
            Assert.Equal("{\"list\":[1,\"two\",[3.5,null],{\"k\":\"v\"}],\"n\":1}", Stored(o));
        }

        [Fact]
        public void A_string_is_json_text_and_must_be_an_object()
        {
            Assert.Equal("{\"a\":[1,2]}", Stored("{ \"a\" : [1, 2] }"));
            var ex = Assert.Throws<Core.BmadGuardException>(() => Stored("[1,2]"));
            Assert.Equal(ErrorCodes.DataNotObject, ex.Code);
            Assert.Equal(1, _store.GetStatistics().TotalEvents);
        }

        [Theory]
        [InlineData("{\"a\":", ErrorCodes.InvalidData)]
        [InlineData("{\"a\":[1,2}", ErrorCodes.InvalidData)]
        [InlineData("{\"a\":1} x", ErrorCodes.InvalidData)]
        [InlineData("", null)]
        public void Malformed_json_text_is_InvalidData_not_a_depth_problem(string json, string? code)
        {
            if (code == null)
            {
                Assert.Equal("{}", Stored(json));
                return;
            }

            var ex = Assert.Throws<Core.BmadGuardException>(() => Stored(json));
            Assert.Equal(code, ex.Code);
        }

        [Fact]
        public void Json_text_nested_deeper_than_the_limit_is_DataTooDeep()
        {
            string deep = string.Concat(Enumerable.Repeat("{\"a\":", 70)) + "1" + new string('}', 70);
            var ex = Assert.Throws<Core.BmadGuardException>(() => Stored(deep));
            Assert.Equal(ErrorCodes.DataTooDeep, ex.Code);
        }

        [Fact]
        public void No_data_is_an_empty_object()
        {
            Assert.Equal("{}", Stored(null));
        }

        [Fact]
        public void A_dictionary_that_contains_itself_is_refused_by_core_rather_than_hanging()
        {
            var h = new Hashtable { ["a"] = 1 };
            h["self"] = new object[] { h };
            var ex = Assert.Throws<Core.BmadGuardException>(() => Stored(h));
            Assert.Equal(ErrorCodes.UnserializableData, ex.Code);
            Assert.Equal(0, _store.GetStatistics().TotalEvents);
        }

        [Fact]
        public void Nesting_deeper_than_the_store_allows_is_DataTooDeep_and_writes_nothing()
        {
            object data = new Hashtable { ["leaf"] = 1 };
            for (int i = 0; i < 80; i++)
            {
                data = new Hashtable { ["d"] = new ArrayList { data } };
            }

            var ex = Assert.Throws<Core.BmadGuardException>(() => Stored(data));
            Assert.Equal(ErrorCodes.DataTooDeep, ex.Code);
            Assert.Equal(0, _store.GetStatistics().TotalEvents);
        }

        [Fact]
        public void An_object_with_no_json_form_is_UnserializableData()
        {
            var ex = Assert.Throws<Core.BmadGuardException>(() => Stored(new Hashtable { ["when"] = new System.IO.FileInfo("/tmp/x") }));
            Assert.Equal(ErrorCodes.UnserializableData, ex.Code);
        }

        [Fact]
        public void Scalars_keep_their_json_types()
        {
            var when = new DateTimeOffset(2026, 11, 22, 1, 2, 3, TimeSpan.Zero);
            string json = Stored(new OrderedDictionary { ["i"] = 5L, ["d"] = 1.25, ["b"] = false, ["s"] = "x", ["t"] = when, ["m"] = 2.50m });
            Assert.Equal("{\"i\":5,\"d\":1.25,\"b\":false,\"s\":\"x\",\"t\":\"2026-11-22T01:02:03.0000000+00:00\",\"m\":2.50}", json);
        }
    }
}
