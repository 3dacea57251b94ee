// Stylesheets imported by the script are bundled into dashboard.css by esbuild.
declare module '*.css';
