using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Xml.Linq;

namespace BmadGuard.HelpGen
{
    /// <summary>
    /// Packs an assembled module folder as a .nupkg in the shape Publish-PSResource produces: the module's files
    /// at the package root, a nuspec whose tags carry PSModule, the editions and one PSCmdlet_/PSFunction_/
    /// PSCommand_ tag per export (that is how the gallery finds commands), and the OPC parts NuGet expects.
    /// </summary>
    public static class ModulePackage
    {
        private static readonly XNamespace Nuspec = "http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd";

        public static XDocument BuildNuspec(string moduleName, IDictionary<string, object?> manifest)
        {
            string Text(string key, string fallback = "") => manifest.TryGetValue(key, out object? v) && v is string s && s.Length > 0 ? s : fallback;
            IDictionary<string, object?> psData = manifest.TryGetValue("PrivateData", out object? pd) && pd is IDictionary<string, object?> pdt
                && pdt.TryGetValue("PSData", out object? psd) && psd is IDictionary<string, object?> psdt
                ? psdt
                : new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);

            List<string> cmdlets = PowerShellData.StringList(manifest, "CmdletsToExport");
            List<string> functions = PowerShellData.StringList(manifest, "FunctionsToExport");
            var tags = new List<string> { "PSModule" };
            tags.AddRange(PowerShellData.StringList(manifest, "CompatiblePSEditions").Select(e => "PSEdition_" + e));
            tags.AddRange(cmdlets.Select(c => "PSCmdlet_" + c));
            tags.AddRange(functions.Select(f => "PSFunction_" + f));
            tags.AddRange(cmdlets.Concat(functions).Select(c => "PSCommand_" + c));
            if (cmdlets.Count > 0)
            {
                tags.Add("PSIncludes_Cmdlet");
            }

            if (functions.Count > 0)
            {
                tags.Add("PSIncludes_Function");
            }

            tags.AddRange(PowerShellData.StringList(psData, "Tags"));

            var metadata = new XElement(Nuspec + "metadata",
                new XElement(Nuspec + "id", moduleName),
                new XElement(Nuspec + "version", Text("ModuleVersion", "0.0.0")),
                new XElement(Nuspec + "authors", Text("Author", moduleName)),
                new XElement(Nuspec + "owners", Text("CompanyName", Text("Author", moduleName))),
                new XElement(Nuspec + "requireLicenseAcceptance", "false"),
                new XElement(Nuspec + "description", Text("Description", moduleName)),
                new XElement(Nuspec + "copyright", Text("Copyright")),
                new XElement(Nuspec + "tags", string.Join(" ", tags.Distinct(StringComparer.OrdinalIgnoreCase))));
            string project = psData.TryGetValue("ProjectUri", out object? pu) && pu is string pus ? pus : string.Empty;
            if (project.Length > 0)
            {
                metadata.Add(new XElement(Nuspec + "projectUrl", project));
            }

            return new XDocument(new XDeclaration("1.0", "utf-8", null), new XElement(Nuspec + "package", metadata));
        }

        /// <summary>Writes <c>outDir/Name.Version.nupkg</c> and returns its path.</summary>
        public static string Pack(string moduleDir, string moduleName, string outDir)
        {
            Dictionary<string, object?> manifest = PowerShellData.ReadFile(Path.Combine(moduleDir, moduleName + ".psd1"));
            XDocument nuspec = BuildNuspec(moduleName, manifest);
            string version = nuspec.Root!.Element(Nuspec + "metadata")!.Element(Nuspec + "version")!.Value;
            Directory.CreateDirectory(outDir);
            string path = Path.Combine(outDir, $"{moduleName}.{version}.nupkg");
            string tmp = path + ".tmp";
            // Fixed timestamps keep the package byte-for-byte reproducible from the same module folder.
            var stamp = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
            using (var zip = new ZipArchive(File.Create(tmp), ZipArchiveMode.Create))
            {
                void Add(string entryName, byte[] content)
                {
                    ZipArchiveEntry e = zip.CreateEntry(entryName, CompressionLevel.Optimal);
                    e.LastWriteTime = stamp;
                    using Stream s = e.Open();
                    s.Write(content, 0, content.Length);
                }

                var extensions = new SortedSet<string>(StringComparer.OrdinalIgnoreCase) { "nuspec", "rels" };
                Add(moduleName + ".nuspec", Encoding.UTF8.GetBytes(nuspec.Declaration + "\n" + nuspec.Root));
                foreach (string file in Directory.GetFiles(moduleDir, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal))
                {
                    string rel = Path.GetRelativePath(moduleDir, file).Replace('\\', '/');
                    string ext = Path.GetExtension(file).TrimStart('.');
                    if (ext.Length > 0)
                    {
                        extensions.Add(ext);
                    }

                    Add(rel, File.ReadAllBytes(file));
                }

                Add("_rels/.rels", Encoding.UTF8.GetBytes(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">" +
                    $"<Relationship Type=\"http://schemas.microsoft.com/packaging/2010/07/manifest\" Target=\"/{moduleName}.nuspec\" Id=\"R1\" /></Relationships>"));
                var types = new StringBuilder("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">");
                foreach (string ext in extensions)
                {
                    string contentType = ext == "rels" ? "application/vnd.openxmlformats-package.relationships+xml" : "application/octet";
                    types.Append($"<Default Extension=\"{ext}\" ContentType=\"{contentType}\" />");
                }

                types.Append("</Types>");
                Add("[Content_Types].xml", Encoding.UTF8.GetBytes(types.ToString()));
            }

            File.Move(tmp, path, overwrite: true);
            return path;
        }
    }
}
